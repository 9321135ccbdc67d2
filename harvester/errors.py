"""One exception root for everything the harvester raises on purpose.

Each stage wraps its library's exceptions (requests, lxml, sqlite3, …) at the
point where it meets that library, so the core and the CLI only ever see these.
"""

from __future__ import annotations


class HarvesterError(Exception):
    """Root of the harvester's errors; carries the source and URL when known."""

    def __init__(self, message: str, *, source: str | None = None, url: str | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.url = url

    def __str__(self) -> str:
        return self.message


class ConfigError(HarvesterError):
    """The configuration file is unreadable or wrong; names file, key and problem."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        where = ": ".join(p for p in (file, key) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.file = file
        self.key = key


class FetchError(HarvesterError):
    """An HTTP fetch failed: network, status, size cap or policy."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        url: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, source=source, url=url)
        self.status = status
        self.retry_after = retry_after


class PolicyError(FetchError):
    """A fetch refused by policy: a private address, a non-http(s) redirect."""


class ParseError(HarvesterError):
    """A fetched body could not be read as a feed or page."""


class StoreError(HarvesterError):
    """The database could not be opened, migrated, read or written."""


class NotifyError(HarvesterError):
    """A notification could not be delivered."""


__all__ = ["ConfigError", "FetchError", "HarvesterError", "NotifyError", "ParseError",
           "PolicyError", "StoreError"]

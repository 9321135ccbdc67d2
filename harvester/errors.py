"""One exception root for everything the harvester raises on purpose.

Each stage wraps its library's exceptions (requests, lxml, sqlite3, …) at the
point where it meets that library, so the core and the CLI only ever see these.
"""

from __future__ import annotations

import re

# Direction controls that hold sway until closed (embeddings, overrides, isolates and
# their ends): left open in a title, one turns whatever is shown after it ("fdp.exe" for
# "exe.pdf", a Subject's prefix). The marks right-to-left text needs (U+200E, U+200F)
# reach no further than themselves and are not among them. Text fields, messages and the
# TOML the harvester writes all keep them out.
DIRECTION_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# What a terminal, a log viewer or a mail client acts on rather than shows, in a server's
# words an error quotes (a status line, a header, a receiver's answer): escape sequences —
# a window title or the clipboard set (OSC), colours or a cleared screen (CSI), in their
# 7-bit and C1 forms —, the other control characters (a carriage return writes over the
# line) and the direction controls
_NOT_TEXT = re.compile(
    r"[\t\n\r]+"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|\x1b[ -/]*[0-~]?"
    rf"|[\x00-\x1f\x7f-\x9f{DIRECTION_CONTROLS}]")


def printable(text: str) -> str:
    """`text` as text only: line breaks and tabs as a space, escape sequences and other
    controls gone (see _NOT_TEXT). Text without them (nearly all) is returned as is."""
    if text.isprintable():
        return text
    return _NOT_TEXT.sub(lambda m: " " if m[0][0] in "\t\n\r" else "", text)


class HarvesterError(Exception):
    """Root of the harvester's errors; carries the source and URL when known. Its message
    is printable text whatever a server put in it."""

    def __init__(self, message: str, *, source: str | None = None, url: str | None = None):
        message = printable(message)
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


__all__ = ["DIRECTION_CONTROLS", "ConfigError", "FetchError", "HarvesterError", "NotifyError",
           "ParseError", "PolicyError", "StoreError", "printable"]

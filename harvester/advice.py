"""What a config that loads may still get wrong: the warnings `check` prints and the
daemon logs as it starts and reloads (a container's operator never runs `check`)."""

from __future__ import annotations

from .config import Config
from .words import duration


def source_warnings(config: Config) -> list[str]:
    """Each a sentence naming the sources and what to do."""
    return _same_urls(config) + _hasty(config)


def _hasty(config: Config) -> list[str]:
    """Sources polled more than once a minute: a typo ("10s" for "10m") more often than a
    need, and what gets an address blocked."""
    return [f"source {s.name} polls {s.url} every {duration(s.every)}: more than once a minute "
            "is more than news changes and more than many sites allow (they block an address "
            "for less); 15m to 1h is usual"
            for s in config.sources if s.enabled and s.cron is None and s.every < 60]


def _same_urls(config: Config) -> list[str]:
    """Sources that read one URL (by its canonical form, as `add` tells them) alike: the
    same headers, and for a listing the same selectors (two sections of one page are two
    sources). The site is asked twice each round for what one source would store."""
    from .urls import canonical_url

    by_url: dict[tuple[object, ...], list[str]] = {}
    for s in config.sources:
        if s.enabled:
            key = (canonical_url(s.url) or s.url, s.kind, s.headers, s.listing)
            by_url.setdefault(key, []).append(s.name)
    return [f"sources {', '.join(names)} poll the same URL ({url}): it is fetched "
            f"{len(names)} times a round for the same items; keep one"
            for (url, *_), names in by_url.items() if len(names) > 1]

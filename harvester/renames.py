"""A source renamed in the config keeps what it stored under its old name: its items, its
health, its log and its place in the feed — not a second, silent baseline that would
swallow whatever came out since the last poll under the old name."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .config import SourceConfig
from .models import StoredSource


def renamed(configured: Sequence[SourceConfig], stored: Sequence[StoredSource],
            settings: Callable[[SourceConfig], str]) -> dict[str, str]:
    """{new name: old name} for each configured source the database has nothing of that is
    a stored source the config no longer names: the same kind at the same URL (by its
    canonical form). Only one to one: where two could be either (two sections of one
    listing page), the one read under the same settings, else none."""
    from .urls import canonical_url

    def where(url: str, kind: str) -> tuple[str, str]:
        return canonical_url(url) or url, kind

    names = {s.name for s in configured}
    held = {s.name for s in stored}
    gone: dict[tuple[str, str], list[StoredSource]] = {}
    for s in stored:
        if s.name not in names:
            gone.setdefault(where(s.url, s.kind), []).append(s)
    fresh: dict[tuple[str, str], list[SourceConfig]] = {}
    for c in configured:
        if c.name not in held:
            fresh.setdefault(where(c.url, c.kind.value), []).append(c)
    out = {}
    for at, olds in gone.items():
        news = fresh.get(at, [])
        if len(olds) == 1 and len(news) == 1:
            out[news[0].name] = olds[0].name
            continue
        # several alike: only pairs whose reading settings are the same and no other's
        pairs = [(n, o) for n in news for o in olds if o.read_as == settings(n)]
        for n, o in pairs:
            if sum(p[0] is n for p in pairs) == 1 and sum(p[1] is o for p in pairs) == 1:
                out[n.name] = o.name
    return out

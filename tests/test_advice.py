"""What a config that loads may still get wrong (`check` prints it, the daemon logs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvester.advice import source_warnings
from harvester.config import parse_config


def _config(**source: object):
    table = {"name": "icmpd-rss", "url": "https://www.icmpd.org/news-centre/rss", **source}
    return parse_config({"sources": [table]}, Path("h.toml"))


@pytest.mark.parametrize(("source", "warned"), [
    ({"every": "10s"}, True),
    ({"every": "59s"}, True),
    ({"every": "1m"}, False),
    ({"every": "10s", "enabled": False}, False),  # not polled at all
    ({"cron": "* * * * *"}, False),  # cron cannot go below a minute
    ({}, False),  # the default half hour
])
def test_a_source_polled_more_than_once_a_minute_is_warned_of(source, warned):
    said = source_warnings(_config(**source))
    assert said == ([f"source icmpd-rss polls https://www.icmpd.org/news-centre/rss every "
                     f"{source['every']}: more than once a minute is more than news changes "
                     "and more than many sites allow (they block an address for less); 15m "
                     "to 1h is usual"] if warned else [])

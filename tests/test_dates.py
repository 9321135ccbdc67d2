"""dates.shown_when: a stored UTC time as people read it, in its source's zone."""

from __future__ import annotations

import pytest

from harvester.dates import shown_when


@pytest.mark.parametrize(("value", "zone", "shown"), [
    # a feed's "Wed, 20 May 2020 09:41:00 +0200", as the publisher wrote it
    ("2020-05-20T07:41:00Z", "Europe/Vienna", "2020-05-20 09:41 CEST"),
    ("2020-01-20T07:41:00Z", "Europe/Vienna", "2020-01-20 08:41 CET"),
    ("2020-05-20T07:41:00Z", "UTC", "2020-05-20 07:41 UTC"),
    # a listing's "08 April 2022", read as Vienna's midnight: the date the page shows
    ("2022-04-07T22:00:00Z", "Europe/Vienna", "2022-04-08"),
    ("2022-04-08T00:00:00Z", "UTC", "2022-04-08"),
    ("2022-04-08T05:00:00Z", "America/New_York", "2022-04-08 01:00 EDT"),
    ("", "UTC", ""),
    (None, "UTC", ""),
    ("not a date", "UTC", "not a date"),
])
def test_a_stored_time_is_shown_in_its_sources_zone(value, zone, shown):
    assert shown_when(value, zone) == shown

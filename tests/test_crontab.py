"""A source's `cron` line read as crontab(5) reads it, and the daemon's trigger firing then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.crontab import parse
from harvester.daemon import cron_trigger

SUNDAY = datetime(2026, 11, 22, 10, 0, 30, tzinfo=UTC)


def fires(line: str, start: datetime, n: int, zone: str = "UTC") -> list[datetime]:
    """The daemon's trigger's next `n` fire times after `start`."""
    trigger, out, now = cron_trigger(line, zone), [], start
    for _ in range(n):
        t = trigger.get_next_fire_time(out[-1] if out else None, now)
        out.append(t)
        now = t + timedelta(seconds=1)
    return out


@pytest.mark.parametrize(("line", "first"), [
    ("0 9 * * 1", "Mon 23 Nov 09:00"),  # APScheduler 3's from_crontab: Tuesday
    ("0 9 * * 0", "Sun 29 Nov 09:00"),  # … Monday
    ("0 9 * * 7", "Sun 29 Nov 09:00"),  # … refused: 7 is past its Sunday = 6
    ("0 9 * * mon-fri", "Mon 23 Nov 09:00"),
    ("0 9 * * 5-7", "Fri 27 Nov 09:00"),
    ("0 9 * * */2", "Tue 24 Nov 09:00"),  # cron's 0, 2, 4, 6: Sun, Tue, Thu, Sat
    ("0 9 1 * 1", "Mon 23 Nov 09:00"),  # the 1st or a Monday (APScheduler: both)
    ("0 9 */2 * 1", "Mon 23 Nov 09:00"),  # a day field led by * joins the weekday's: odd Mondays
    ("30 8 * jan-mar sun", "Sun 03 Jan 08:30"),
    ("5/20 * * * *", "Sun 22 Nov 10:05"),  # 5-59/20
])
def test_a_line_fires_when_cron_would_run_it(line, first):
    assert fires(line, SUNDAY, 1)[0].strftime("%a %d %b %H:%M") == first


def test_either_day_field_will_do_unless_one_starts_with_a_star():
    either = [t.strftime("%a %d") for t in fires("0 9 1 * 1", SUNDAY, 4)]
    assert either == ["Mon 23", "Mon 30", "Tue 01", "Mon 07"]
    both = [t.strftime("%a %d %b") for t in fires("0 9 */2 * 1", SUNDAY, 3)]
    assert both == ["Mon 23 Nov", "Mon 07 Dec", "Mon 21 Dec"]


@pytest.mark.parametrize(("line", "error"), [
    ("* * * *", "'* * * *' is not a crontab line: expected 5 fields (minute hour day month "
                "weekday), e.g. '*/15 * * * *'"),
    ("*/15 25 * * *", "'*/15 25 * * *': hour 25 is outside 0-23"),
    ("0 9 * * 8", "'0 9 * * 8': weekday 8 is outside 0-7"),
    ("0 9 * * fri-mon", "'0 9 * * fri-mon': weekday range fri-mon runs backwards"),
    ("0 9 * * funday", "'0 9 * * funday': bad weekday 'funday' (a number, or one of sun, mon, "
                       "tue, wed, thu, fri, sat)"),
    ("0 mon * * *", "'0 mon * * *': bad hour 'mon'"),
    ("\u00b2 * * * *", "'\u00b2 * * * *': bad minute '\u00b2'"),  # a digit to isdigit() only
    ("*/0 * * * *", "'*/0 * * * *': minute step 0"),
    ("0 9 *-5 * *", "'0 9 *-5 * *': bad day field '*-5'"),
    ("0 9 1,,2 * *", "'0 9 1,,2 * *': bad day field '1,,2'"),
])
def test_a_line_cron_would_not_take_is_refused_naming_the_field(line, error):
    with pytest.raises(ValueError) as e:
        parse(line)
    assert str(e.value) == error


def test_the_config_refuses_it_with_the_key(tmp_path):
    from harvester.config import load_config
    from harvester.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text('[[sources]]\nname = "a"\nurl = "https://e.org/"\ncron = "0 9 * * funday"\n')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == (f"{path}: sources[0].cron: '0 9 * * funday': bad weekday 'funday' "
                            "(a number, or one of sun, mon, tue, wed, thu, fri, sat)")


def _field(lo: int, hi: int, names: tuple[str, ...] = (), star_step: bool = True):
    n = st.integers(lo, hi)
    value = n | st.sampled_from(names) if names else n
    step = st.integers(1, max(1, (hi - lo) // 2))
    def span(a: int, b: int) -> str:  # croniter misreads "0-0"; cron: 0
        return f"{min(a, b)}-{max(a, b)}" if a != b else str(a)

    single = st.one_of(
        value.map(str),
        st.tuples(n, n).map(lambda ab: span(*ab)),
        st.tuples(n, n, step).filter(lambda t: t[0] != t[1]).map(
            lambda t: f"{span(t[0], t[1])}/{t[2]}"),
    )
    lists = st.lists(single, min_size=1, max_size=3).map(",".join)
    stars = st.just("*") | (step.map(lambda s: f"*/{s}") if star_step else st.nothing())
    return stars | lists


# A day field led by "*" but not just "*" (*/2) beside a restricted weekday field is where
# cron and croniter part: cron counts it as a star (both must match), croniter as
# restricted (either will do); crontab.py follows cron, tested above. Not generated here.
_LINES = st.tuples(
    _field(0, 59), _field(0, 23), _field(1, 28, star_step=False),
    _field(1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                   "dec")),
    _field(0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat"), star_step=False),
).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(line=_LINES, start=st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)))
def test_the_daemon_fires_when_croniter_says_cron_would(line, start):
    start = start.replace(second=30, microsecond=0, tzinfo=UTC)
    ref = croniter(line, start)
    expected = [ref.get_next(datetime) for _ in range(4)]
    got = fires(line, start, 4)
    assert got == expected
    # and `once --due` finds the same times on its own
    tab = parse(line)
    walked, t = [], start.replace(tzinfo=None)
    for _ in range(4):
        t = tab.next_after(t)
        walked.append(t.replace(tzinfo=UTC))
    assert walked == expected
    assert [tab.next_fire(t, UTC) for t in expected] == [
        *expected[1:], croniter(line, expected[-1]).get_next(datetime)]


VIENNA = ZoneInfo("Europe/Vienna")


def _walls(times: list[datetime], zone: ZoneInfo = VIENNA) -> list[str]:
    return [t.astimezone(zone).strftime("%d %H:%M %Z") for t in times]


@pytest.mark.parametrize(("line", "start", "expected"), [
    # autumn, 25 Oct 2026: 03:00 CEST goes back to 02:00 CET. A line that runs every hour
    # follows the clock through the repeated hour; one at fixed hours runs once
    ("*/20 * * * *", datetime(2026, 10, 25, 0, 10, tzinfo=UTC),
     ["25 02:20 CEST", "25 02:40 CEST", "25 02:00 CET", "25 02:20 CET", "25 02:40 CET",
      "25 03:00 CET"]),
    ("30 2 * * *", datetime(2026, 10, 24, 12, tzinfo=UTC),
     ["25 02:30 CEST", "26 02:30 CET", "27 02:30 CET"]),
    ("0 */2 * * *", datetime(2026, 10, 24, 23, 30, tzinfo=UTC),
     ["25 02:00 CEST", "25 04:00 CET", "25 06:00 CET"]),
    # spring, 29 Mar 2026: 02:00 CET jumps to 03:00 CEST. A time the clock skips runs
    # when it jumps; a line that runs every hour goes on from the new time
    ("30 2 * * *", datetime(2026, 3, 28, 12, tzinfo=UTC),
     ["29 03:00 CEST", "30 02:30 CEST", "31 02:30 CEST"]),
    ("10 * * * *", datetime(2026, 3, 29, 0, tzinfo=UTC),
     ["29 01:10 CET", "29 03:10 CEST", "29 04:10 CEST"]),
    ("*/20 * * * *", datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
     ["29 01:40 CET", "29 03:00 CEST", "29 03:20 CEST"]),
])
def test_a_line_runs_across_the_clocks_changes_as_cron_runs_it(line, start, expected):
    """The daemon's trigger and `once --due` find the same times, each after the last."""
    daemon = fires(line, start, len(expected), "Europe/Vienna")
    assert _walls(daemon) == expected
    due, t = [], start
    for _ in expected:
        t = parse(line).next_fire(t, VIENNA)
        due.append(t)
    assert due == daemon


def test_the_daemons_run_times_past_the_repeated_hour_come_to_an_end():
    """APScheduler works out a late job's missed run times by asking for the next until
    one is past now. Its own CronTrigger, in the hour the clock repeats, answered with a
    time it had given already, so that loop never ended (the daemon hung at 02:30 on the
    last Sunday of October); each answer here is later than the one before."""
    now = datetime(2026, 10, 25, 4, tzinfo=UTC)  # 05:00 CET, after a night asleep
    for line in ("30 2 * * *", "*/20 * * * *", "0 * * * *", "30 * * * 0"):
        trigger = cron_trigger(line, "Europe/Vienna")
        t = trigger.get_next_fire_time(None, datetime(2026, 10, 24, 20, tzinfo=UTC))
        runs = []
        while t is not None and t <= now:
            runs.append(t)
            assert len(runs) < 100, (line, _walls(runs[-5:]))
            t = trigger.get_next_fire_time(t, now)
        assert runs == sorted(set(runs)), line


@settings(max_examples=150, deadline=None)
@given(line=_LINES, start=st.datetimes(datetime(2026, 3, 27), datetime(2026, 3, 31))
       | st.datetimes(datetime(2026, 10, 23), datetime(2026, 10, 27)),
       zone=st.sampled_from(["Europe/Vienna", "America/New_York", "Australia/Lord_Howe",
                             "America/Santiago"]))
def test_around_a_clock_change_each_fire_is_later_and_on_the_line(line, start, zone):
    """Each fire time is later than the last; it is on the line's wall clock, or, where
    the clock skipped the line's time, the instant it jumped; a line at fixed hours never
    runs twice at one wall-clock time."""
    tz, tab = ZoneInfo(zone), parse(line)
    t = start.replace(tzinfo=tz).astimezone(UTC)
    seen = set()
    for _ in range(6):
        nxt = tab.next_fire(t, tz)
        if nxt is None:
            break
        assert nxt > t
        wall = nxt.astimezone(tz)
        on_line = tab.next_after(wall.replace(tzinfo=None) - timedelta(minutes=1)) == (
            wall.replace(tzinfo=None, second=0))
        jumped = (nxt - timedelta(seconds=1)).astimezone(tz).utcoffset() != wall.utcoffset()
        assert on_line or jumped, (line, zone, wall)
        if len(tab.hours) < 24:
            assert wall.replace(tzinfo=None) not in seen, (line, zone, wall)
            seen.add(wall.replace(tzinfo=None))
        t = nxt


def test_a_line_that_never_fires_has_no_next_time():
    assert parse("0 0 30 2 *").next_after(datetime(2026, 1, 1)) is None

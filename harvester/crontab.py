"""A source's `cron` line read as crontab(5) reads it, into the sets of times it names.

Read here rather than by APScheduler's `CronTrigger.from_crontab`, which in the 3.x series
counts weekdays from Monday (cron's 0 and 7 are Sunday: a weekly "0 9 * * 1" would run on
Tuesdays, and "* * * * 7" would not start) and requires the day of the month and the
weekday both to match where cron takes either. The daemon hands APScheduler the sets;
`once --due` finds a line's next minute with them itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from .words import is_count

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS = (  # name, lowest, highest, names (numbered from `lowest`)
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("weekday", 0, 7, WEEKDAYS),
)
_TOKEN = re.compile(r"^(\*|\w+)(?:-(\w+))?(?:/(\d+))?$")


@dataclass(frozen=True, slots=True)
class Crontab:
    """What a crontab line allows, field by field; weekdays as cron numbers them (0 =
    Sunday). `day_or` is cron's rule that when neither day field starts with "*", a day
    matching either one will do."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_star: bool
    weekday_star: bool

    @property
    def day_or(self) -> bool:
        return not (self.day_star or self.weekday_star)

    def next_after(self, t: datetime) -> datetime | None:
        """The first minute after `t` that the line names, in `t`'s wall-clock time; None
        when there is none within five years (a 30 February)."""
        t = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t.year + 5
        while t.year <= limit:  # whole months, days and hours skipped where they cannot match
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self._day(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        return None

    def next_fire(self, after: datetime, zone: tzinfo) -> datetime | None:
        """The first instant (UTC) after `after` at which the line fires on `zone`'s wall
        clock, across its changes as cron runs it: a time the clock skips fires when the
        clock jumps, unless the line runs every hour (it goes on from the new time); an
        hour the clock repeats fires in both passes for a line that runs every hour, and
        once, the first time, for one at fixed hours. None: no time within five years."""
        hourly = len(self.hours) == 24
        after = after.astimezone(UTC)
        local = after.astimezone(zone)
        t = local.replace(tzinfo=None, fold=0)
        if hourly and local.fold == 0:
            # in the first pass of a repeated hour, the second pass is still to come
            first, second = _twin(t, zone)
            t -= second - first
        best: datetime | None = None
        while (m := self.next_after(t)) is not None:
            first, second = _twin(m, zone)
            times: tuple[datetime, ...]
            if first < second:  # the clock shows this time twice
                times = (first, second) if hourly else (first,)
            elif first > second:  # the clock skips this time
                times = () if hourly else (_jump(second, first, zone),)
            else:
                times = (first,)
            for at in times:
                if at > after and (best is None or at < best):
                    best = at
            if first == second and first > after:  # from here on, wall and real time agree
                return best
            t = m
        return best

    def _day(self, t: datetime) -> bool:
        day, weekday = t.day in self.days, t.isoweekday() % 7 in self.weekdays
        return day or weekday if self.day_or else day and weekday


def _twin(wall: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The instants (UTC) a naive wall-clock time names in `zone`: its first and second
    reading (PEP 495's fold 0 and 1) — equal but where the clock repeats or skips it."""
    return (wall.replace(tzinfo=zone, fold=0).astimezone(UTC),
            wall.replace(tzinfo=zone, fold=1).astimezone(UTC))


def _jump(before: datetime, after: datetime, zone: tzinfo) -> datetime:
    """The instant in (before, after] at which `zone`'s clock jumps forward."""
    offset = before.astimezone(zone).utcoffset()
    lo, hi = int(before.timestamp()), int(after.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == offset:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def _value(text: str, field: str, lo: int, hi: int, names: tuple[str, ...], line: str) -> int:
    if is_count(text):
        n = int(text)
    elif text.lower() in names:
        n = names.index(text.lower()) + lo
    else:
        raise ValueError(f"{line!r}: bad {field} {text!r}"
                         + (f" (a number, or one of {', '.join(names)})" if names else ""))
    if not lo <= n <= hi:
        raise ValueError(f"{line!r}: {field} {n} is outside {lo}-{hi}")
    return n


def _field(part: str, field: str, lo: int, hi: int, names: tuple[str, ...], line: str
           ) -> frozenset[int]:
    out: set[int] = set()
    for token in part.split(","):
        m = _TOKEN.match(token)
        if not m:
            raise ValueError(f"{line!r}: bad {field} field {part!r}")
        start, end, step = m.groups()
        if start == "*":
            if end is not None:
                raise ValueError(f"{line!r}: bad {field} field {part!r}")
            first, last = lo, hi
        else:
            first = _value(start, field, lo, hi, names, line)
            # "5/15" is "5-59/15", as cronie and most crons read it
            last = _value(end, field, lo, hi, names, line) if end else (hi if step else first)
            if last < first:
                raise ValueError(f"{line!r}: {field} range {start}-{end} runs backwards")
        stride = int(step) if step else 1
        if stride == 0:
            raise ValueError(f"{line!r}: {field} step 0")
        out.update(range(first, last + 1, stride))
    if field == "weekday" and 7 in out:  # 7 is Sunday too
        out = (out - {7}) | {0}
    return frozenset(out)


def parse(line: str) -> Crontab:
    """A five-field crontab line → its sets; ValueError naming the field otherwise."""
    parts = line.split()
    if len(parts) != 5:
        raise ValueError(f"{line!r} is not a crontab line: expected 5 fields "
                         "(minute hour day month weekday), e.g. '*/15 * * * *'")
    minutes, hours, days, months, weekdays = (
        _field(p, name, lo, hi, names, line)
        for p, (name, lo, hi, names) in zip(parts, _FIELDS, strict=True))
    return Crontab(minutes, hours, days, months, weekdays, day_star=parts[2].startswith("*"),
                   weekday_star=parts[4].startswith("*"))


__all__ = ["WEEKDAYS", "Crontab", "parse"]

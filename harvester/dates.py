"""Date text as sources write it → aware UTC datetimes.

Handles RFC 822 (with two-digit years and named zones such as CEST, which the
standard library and feedparser read as UTC), ISO 8601, epoch seconds, the
page's own `strptime` formats, and dates without a zone (read in the source's
time zone). Anything unreadable is None: the caller flags it, never guesses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_tz
from functools import lru_cache
from zoneinfo import ZoneInfo

# Zone abbreviations that email.utils does not know (it knows UT, GMT, Z and the US ones).
_NAMED_ZONES = {
    "CET": 1, "CEST": 2, "MET": 1, "MEST": 2, "EET": 2, "EEST": 3, "WET": 0, "WEST": 1,
    "BST": 1, "IST": 5.5, "MSK": 3, "JST": 9, "KST": 9, "HKT": 8, "SGT": 8, "AEST": 10,
    "AEDT": 11, "ACST": 9.5, "AWST": 8, "NZST": 12, "NZDT": 13, "UTC": 0, "GMT": 0, "UT": 0,
    "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8,
    "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10,
    "MEZ": 1, "MESZ": 2, "OEZ": 2, "OESZ": 3, "WEZ": 0, "WESZ": 1,  # as German pages write them
}
_TRAILING_ZONE = re.compile(r"\s+\(?([A-Z]{1,5})\)?\s*$")
# a time followed by a zone: "+0200", "-05:00", "GMT", "XYZ"…; without one the date is local
_HAS_ZONE = re.compile(r"\d:\d{2}(?::\d{2})?\s*(?:[+-]\d{2}:?\d{2}|[A-Za-z]{1,5})\s*$")
# an offset no zone has (+2400, -1900, +0275): every reader would trust it, or guess
_BAD_OFFSET = re.compile(r":\d{2}\s*[+-](?:1[5-9]|[2-9]\d):?\d{2}$|:\d{2}\s*[+-]\d{2}:?[6-9]\d$")
_EPOCH = re.compile(r"^\d{9,11}(\.\d+)?$")
_YEAR_ONLY = re.compile(r"^\d{4}$")
_ISO_HINT = re.compile(r"^\d{4}-\d{2}-\d{2}|^\d{8}(?:$|T\d)")  # 2020-05-26, 20200526
# An IANA zone after the time ("26 May 2020 14:12 Europe/Vienna"): read in that zone
_IANA = re.compile(r"\s+\(?([A-Z][A-Za-z_]+(?:/[A-Za-z_+-]+)+)\)?$")
# The RFC 822 spelling nearly every feed uses ("Wed, 27 May 2020 09:06:39 +0200"): read
# directly, ~5× faster than email.utils; anything else takes the general path.
_RFC822_PLAIN = re.compile(
    r"^(?:[A-Za-z]{3},\s?)?(\d{1,2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2})(?::(\d{2}))?"
    r" (?:([+-])(\d{2})(\d{2})|GMT|UTC|UT|Z)$")
_MONTH_NUMBERS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _localise(dt: datetime, tz: str) -> datetime:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_zone(tz))
    return dt.astimezone(UTC)


def _rfc822_plain(text: str) -> datetime | None:
    m = _RFC822_PLAIN.match(text)
    if m is None:
        return None
    month = _MONTH_NUMBERS.get(m[2].lower())
    if month is None:
        return None
    try:
        naive = datetime(int(m[3]), month, int(m[1]), int(m[4]), int(m[5]), int(m[6] or 0))
    except ValueError:
        return None
    if m[7]:
        offset = timedelta(hours=int(m[8]), minutes=int(m[9]))
        naive = naive - offset if m[7] == "+" else naive + offset
    return naive.replace(tzinfo=UTC)


def _rfc822(text: str, tz: str) -> datetime | None:
    offset_h: float | None = None
    m = _TRAILING_ZONE.search(text)
    if m and m.group(1) in _NAMED_ZONES:
        offset_h = _NAMED_ZONES[m.group(1)]
        text = text[: m.start()]
    t = parsedate_tz(text)
    if t is None:
        return None
    year = t[0]
    if year < 100:  # RFC 822 two-digit years: 00-68 → 20xx, 69-99 → 19xx (as POSIX strptime)
        year += 2000 if year < 69 else 1900
    try:
        naive = datetime(year, t[1], t[2], t[3], t[4], t[5])
    except ValueError:
        return None
    if offset_h is not None:
        return (naive - timedelta(hours=offset_h)).replace(tzinfo=UTC)
    if t[9] is None or not _HAS_ZONE.search(text):
        return _localise(naive, tz)
    return (naive - timedelta(seconds=t[9])).replace(tzinfo=UTC)


def _iso(text: str, tz: str) -> datetime | None:
    s = text.strip()
    if s.endswith(("z", "Z")):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    return _localise(dt, tz)


# Month names of the pages' languages → English, so one strptime format reads them all.
# French, German, Spanish, Portuguese, Italian, Dutch; Polish and Russian as a date
# writes them ("26 maja 2020", "26 мая 2020": the genitive).
_MONTHS = {
    "January": "janvier januar enero janeiro jänner gennaio januari stycznia января",
    "February": "février fevrier februar febrero fevereiro febbraio februari lutego февраля",
    "March": "mars märz maerz marzo março marco maart marca марта",
    "April": "avril abril aprile kwietnia апреля",
    "May": "mai mayo maio maggio mei maja мая",
    "June": "juin juni junio junho giugno czerwca июня",
    "July": "juillet juli julio julho luglio lipca июля",
    "August": "août aout agosto augustus sierpnia августа",
    "September": "septembre septiembre setiembre setembro settembre września сентября",
    "October": "octobre oktober octubre outubro ottobre października октября",
    "November": "novembre noviembre novembro listopada ноября",
    "December": "décembre decembre dezember diciembre dezembro dicembre grudnia декабря",
}
_MONTH_WORDS = {w: en for en, words in _MONTHS.items() for w in words.split()}
_MONTH_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _MONTH_WORDS), key=len,
                                                 reverse=True)) + r")\b\.?", re.IGNORECASE)
_NUMERIC = re.compile(r"^(\d{1,2})[./](\d{1,2})[./](\d{4})$")  # 08.12.2021: day first


def _english_months(s: str) -> str:
    """'29 de abril de 2016' → '29 April 2016'; '3. März 2021' → '3 March 2021'."""
    s = _MONTH_RE.sub(lambda m: _MONTH_WORDS[m.group(1).lower()], s)
    s = re.sub(r"\b(de|del)\b", " ", s, flags=re.IGNORECASE)
    s = re.sub(r"(?<=\d)\.(?=\s)", "", s)  # "3. März" → "3 März"
    return " ".join(s.split())


# Weekday names a listing writes before its date, in the pages' languages
_WEEKDAY = re.compile(
    r"^(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|sday|urday)?\.?,?\s+"
    r"|^(?:montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonnabend|sonntag|mo|di|mi|do"
    r"|fr|sa|so|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|lun|mar|mer|jeu|ven|sam"
    r"|dim|lunes|martes|miércoles|miercoles|jueves|viernes|sábado|sabado|domingo"
    r"|segunda|terça|terca|quarta|quinta|sexta)(?:-feira)?\.?,?\s+", re.IGNORECASE)
_ORDINAL = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)(?:\s+of)?\b", re.IGNORECASE)
# The label a page writes before its date ("Posted on", "Published:", "Veröffentlicht am",
# "Publié le", "Publicado el"): a date selector often takes it with the date.
_LABEL = re.compile(
    r"^(?:(?:first\s+|last\s+)?(?:posted|published|updated|released|modified|dated?)"
    r"|veröffentlicht|aktualisiert|erschienen|datum|stand|publié|publie|mis à jour"
    r"|publicado|actualizado|atualizado|fecha|data|pubblicato|gepubliceerd)"
    r"(?:\s+(?:on|at|am|vom|le|du|el|em|il|op))?\s*:?\s+", re.IGNORECASE)
# what follows the date: a time ("- 14:12", "at 2:12 pm", "um 14.12 Uhr"), then perhaps a zone
_TIME = re.compile(
    r"(?:\s*(?:,|-|–|\||@|at|um|à|a las|às)?\s+(\d{1,2})[:.h](\d{2})(?::(\d{2}))?"
    r"(?:\s*([ap])\.?\s?m\.?|\s*uhr|\s*h)?"
    r"(?:\s*(?:([+-])(\d{2}):?(\d{2})|\(?([A-Z]{1,5})\)?))?)?$", re.IGNORECASE)
_TIME_FIRST = re.compile(r"^(\d{1,2})[:.](\d{2})(?::(\d{2}))?(?:\s*([ap])\.?\s?m\.?)?"
                         r"\s*[,|-]?\s+(\D.*|\d{1,2}\D.*)$", re.IGNORECASE)
_DAY_FIRST = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4})$")  # 26.05.2020, 05/26/2020
_YEAR_FIRST = re.compile(r"^(\d{4})([./-])(\d{1,2})\2(\d{1,2})$")  # 2020/05/26
# Chinese, Japanese and Korean: 2020年5月26日, 2020년 5월 26일 (a time may follow)
_CJK = re.compile(r"^(\d{4})\s*[年년]\s*(\d{1,2})\s*[月월]\s*(\d{1,2})\s*[日일]\s*(.*)$"
                  r"|^(\d{4})\.\s(\d{1,2})\.\s(\d{1,2})\.(?:\s+(.*))?$")  # Korean: 2020. 5. 26.
# two-digit years last, read as strptime reads them (69-99: 19xx)
_WORDS_FORMATS = ("%d %B %Y", "%B %d %Y", "%d %b %Y", "%b %d %Y",
                  "%d %B %y", "%B %d %y", "%d %b %y", "%b %d %y")
_SEPT = re.compile(r"\bsept\b", re.IGNORECASE)


class _NotADate(ValueError):
    """Text read as a date that names none (a 13th month, 13 pm): no other reader may
    guess at it."""


def _day(text: str) -> datetime | None:
    """A date without its time: words ("26 May 2020", "May 26 2020") or numbers, day
    first (26.05.2020) unless only month first can be (05/26/2020), or year first."""
    m = _DAY_FIRST.match(text)
    if m:
        a, b, year = int(m[1]), int(m[3]), int(m[4])
        for day, month in ((a, b), (b, a)):
            try:
                return datetime(year, month, day)
            except ValueError:
                continue
        raise _NotADate(text)
    m = _YEAR_FIRST.match(text)
    if m:
        try:
            return datetime(int(m[1]), int(m[3]), int(m[4]))
        except ValueError:
            raise _NotADate(text) from None
    words = _SEPT.sub("Sep", " ".join(text.replace(".", " ").split()))  # "Sept. 26 2020"
    for fmt in _WORDS_FORMATS:
        try:
            return datetime.strptime(words, fmt)
        except ValueError:
            continue
    return None


def _human(s: str, tz: str) -> datetime | None:
    """A date as people write it on a page: "Tuesday, May 26th, 2020 - 2:12 pm", "Di, 26.
    Mai 2020 14:12 +0200", "26/05/2020 14:12". None when a part is not understood;
    _NotADate when it is, and names no time (31/31/2020, 13 pm)."""
    m = _CJK.match(s)
    if m:
        year, month, mday, rest = m.groups()[:4] if m[1] else m.groups()[4:]
        try:
            day = datetime(int(year), int(month), int(mday))
        except ValueError:
            raise _NotADate(s) from None
        s = f"{day:%d %B %Y} {rest or ''}".strip()
    s = _ORDINAL.sub(r"\1", _english_months(s))
    bare = _WEEKDAY.sub("", s, count=1)
    if bare == s:
        return _human_date(s, tz)
    try:  # "Mar 26, 2020" is March; "mar. 26 mai 2020", a Tuesday
        return _human_date(bare, tz) or _human_date(s, tz)
    except _NotADate:
        return _human_date(s, tz)


def _human_date(s: str, tz: str) -> datetime | None:
    first = _TIME_FIRST.match(s)  # "16:29, 25 February 2001"
    if first:
        day = _day(first[5].replace(",", " ").strip())
        hour, minute, second, ampm = int(first[1]), int(first[2]), int(first[3] or 0), first[4]
        m = None
    else:
        m = _TIME.search(s)
        if m is None:
            return None
        day = _day(s[: m.start()].replace(",", " ").strip())
        hour, minute, second, ampm = int(m[1] or 0), int(m[2] or 0), int(m[3] or 0), m[4]
    if day is None:
        return None
    if ampm:  # 12-hour clock
        if not 1 <= hour <= 12:
            raise _NotADate(s)
        hour = hour % 12 + (12 if ampm.lower() == "p" else 0)
    try:
        naive = day.replace(hour=hour, minute=minute, second=second)
    except ValueError:
        return None
    if m is None:
        return _localise(naive, tz)
    if m[5]:
        offset = timedelta(hours=int(m[6]), minutes=int(m[7]))
        return (naive - offset if m[5] == "+" else naive + offset).replace(tzinfo=UTC)
    if m[8]:
        if m[8].upper() not in _NAMED_ZONES:
            return None
        return (naive - timedelta(hours=_NAMED_ZONES[m[8].upper()])).replace(tzinfo=UTC)
    return _localise(naive, tz)


# A time ago, as listings write it ("3 hours ago", "vor 2 Tagen", "il y a 5 minutes",
# "hace 1 día", "há 2 semanas"), and the days named by their place ("yesterday")
_AGO_UNITS = {
    "second": 1, "sekunde": 1, "seconde": 1, "segundo": 1,
    "minute": 60, "minuto": 60, "min": 60,
    "hour": 3600, "stunde": 3600, "heure": 3600, "hora": 3600, "hr": 3600,
    "day": 86400, "tag": 86400, "jour": 86400, "día": 86400, "dia": 86400,
    "week": 604800, "woche": 604800, "semaine": 604800, "semana": 604800,
    "month": 2592000, "monat": 2592000, "mois": 2592000, "mes": 2592000, "mês": 2592000,
    "year": 31536000, "jahr": 31536000, "an": 31536000, "año": 31536000, "ano": 31536000,
}
_ONE = r"\d{1,4}|an?|one|eine[mr]?|un|une|uno|una|um|uma"
_UNIT = r"[a-zäéíêñ]+?"
_AGO = re.compile(
    rf"^(?:({_ONE})\s+({_UNIT})\s+ago|vor\s+({_ONE})\s+({_UNIT})|il y a\s+({_ONE})\s+({_UNIT})"
    rf"|hace\s+({_ONE})\s+({_UNIT})|há\s+({_ONE})\s+({_UNIT}))$", re.IGNORECASE)
_UNIT_ENDINGS = ("es", "en", "s", "n", "e")
_NAMED_DAYS = {"today": 0, "heute": 0, "aujourd'hui": 0, "hoy": 0, "hoje": 0,
               "yesterday": 1, "gestern": 1, "hier": 1, "ayer": 1, "ontem": 1}


def _ago(s: str, tz: str, now: datetime) -> datetime | None:
    """A date written as a time before `now`; None when `s` is no such thing."""
    low = s.lower()
    if low in _NAMED_DAYS:  # a day, read as dates without a time are: its start, locally
        day = now.astimezone(_zone(tz)).date() - timedelta(days=_NAMED_DAYS[low])
        return _localise(datetime(day.year, day.month, day.day), tz)
    m = _AGO.match(s)
    if m is None:
        return None
    count, unit = next((m[i], m[i + 1]) for i in range(1, 11, 2) if m[i])
    unit = unit.lower()
    seconds = _AGO_UNITS.get(unit) or next(
        (_AGO_UNITS[unit[: -len(e)]] for e in _UNIT_ENDINGS
         if unit.endswith(e) and unit[: -len(e)] in _AGO_UNITS), None)
    if seconds is None:
        return None
    n = int(count) if count.isdigit() else 1
    return (now - timedelta(seconds=n * seconds)).astimezone(UTC).replace(microsecond=0)


def parse_date(text: str | None, tz: str = "UTC", formats: tuple[str, ...] = (),
               now: datetime | None = None) -> datetime | None:
    """Read a date as sources write it; None when it cannot be read with confidence. With
    `now`, a time ago ("3 hours ago", "yesterday") is read back from it."""
    try:
        dt = _parse_date(text, tz, formats)
        if dt is None and now is not None and text and len(text) <= MAX_DATE_TEXT:
            dt = _ago(_LABEL.sub("", " ".join(text.split()), count=1), tz, now)
        return dt
    except (OverflowError, _NotADate):
        # OverflowError: a date at the calendar's edge, moved past it by its zone:
        # "0001-01-01T00:00:00" is how .NET feeds write "no date" (DateTime.MinValue)
        return None


# The longest a date is written ("Wednesday, 20 September 2020 09:41:00 Central European
# Summer Time" is 70): longer text is no date, and is not fed to every pattern.
MAX_DATE_TEXT = 200


def _parse_date(text: str | None, tz: str, formats: tuple[str, ...]) -> datetime | None:
    if not text or len(text) > 4 * MAX_DATE_TEXT:  # room for the markup's own spaces
        return None
    s = _LABEL.sub("", " ".join(text.split()), count=1)
    if len(s) > MAX_DATE_TEXT:
        return None
    if not s:
        return None
    if _BAD_OFFSET.search(s):
        return None
    m = _NUMERIC.match(s)
    if m:
        try:
            return _localise(datetime(int(m[3]), int(m[2]), int(m[1])), tz)
        except ValueError:
            return None
    if formats:
        s2 = _english_months(s)
        for fmt in formats:
            try:
                return _localise(datetime.strptime(s2, fmt), tz)
            except ValueError:
                continue
    if _EPOCH.match(s):
        try:
            return datetime.fromtimestamp(float(s), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if _ISO_HINT.match(s):
        dt = _iso(s, tz)
        if dt is not None or s[4] != "-":
            return dt
    m = _IANA.search(s)
    if m:
        try:
            _zone(m[1])
        except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            return None
        return _parse_date(s[: m.start()], m[1], formats)
    if _YEAR_ONLY.match(s):  # "2020" names no day: the caller flags it, not January 1st
        return None
    dt = _rfc822_plain(s) or _human(s, tz) or _rfc822(s, tz)
    if dt is not None:
        return dt
    return _fallback(s)


def _fallback(s: str) -> datetime | None:
    # feedparser knows many odd dialects (W3C-DTF variants, Korean, Greek, Hungarian …);
    # it reads a missing zone as UTC, which is why it only comes last.
    from feedparser.datetimes import _parse_date

    try:
        t = _parse_date(s)
    except Exception:
        return None
    if t is None:
        return None
    year, month, day, hour, minute, second = t[:6]
    if str(year) not in s:  # it made up a year ("26-05-2020" read as 2026): not a date
        return None
    if day not in {int(n) for n in re.findall(r"\d+", s)}:  # nor a day it cannot show
        return None
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def iso_utc(dt: datetime) -> str:
    """The one spelling stored and shown: 2020-05-27T09:06:39Z."""
    u = dt.astimezone(UTC)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T"
            f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z")



def shown_when(value: str | None, zone: str = "UTC") -> str:
    """A stored UTC time as people read it in `zone` (its source's, where its dates were
    read): "2020-05-20 09:41 CEST" as the feed wrote it; a local midnight — a listing's
    date-only "08 April 2022" — as the date alone, "2022-04-08", not the day before."""
    if not value:
        return ""
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        local = at.astimezone(_zone(zone)) if at.tzinfo else at
    except (ValueError, KeyError):  # not a time, or a zone no longer known
        return value
    if (local.hour, local.minute, local.second) == (0, 0, 0):
        return f"{local:%Y-%m-%d}"
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or 'UTC'}"


__all__ = ["iso_utc", "parse_date", "shown_when"]

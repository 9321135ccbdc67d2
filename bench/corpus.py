"""Deterministic corpus of ICMPD-shaped news feeds, for the benchmark and the tests.

Every byte is a pure function of (seed, feed index, item sequence number), so the
same arguments give the same corpus on every machine. A feed's state is its
`head` (the newest item's sequence number); advancing it puts new items on top
and pushes the oldest out of the window, as a real news centre does.

    python bench/corpus.py --n 200 --m 50 --out /tmp/corpus     # writes files
"""

from __future__ import annotations

import argparse
import html
import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

CATEGORIES = ["Project News", "Press Release", "Expert Voice", "In Focus", "Around the Globe"]
PLACES = ["Vienna", "Accra", "Kyiv", "Beirut", "Tbilisi", "Dakar", "Lisboa", "São Paulo",
          "Göttingen", "İstanbul", "Diyarbakır", "Maputo", "Bogotá", "Almaty", "Praia"]
PEOPLE = ["Michael Spindelegger", "João Gonçalves", "Käthe Großmann", "Ayşe Çelik",
          "Kwame Mensah", "Nguyễn Thị Hoa", "Ivana Horvat", "Bernhard Perchinig"]
TOPICS = ["border management", "return and reintegration", "labour migration", "asylum systems",
          "anti-trafficking", "migration dialogues", "diaspora engagement", "legal pathways"]
VERBS = ["launched", "concludes", "strengthens", "kicks off", "reviews", "opens", "supports",
         "presents", "enters a new phase", "signs an agreement"]
NOUNS = ["project", "partnership", "training series", "conference", "initiative", "study",
         "regional dialogue", "workshop"]
WORDS = [
    "the", "of", "and", "to", "in", "for", "with", "on", "by", "from", "project", "partners",
    "national", "regional", "authorities", "ministry", "cooperation", "migration", "border",
    "management", "capacity", "training", "experts", "network", "implementation", "stakeholders",
    "strategy", "evaluation", "support", "framework",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
EPOCH = datetime(2020, 1, 6, 8, 0, tzinfo=UTC)


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(f"{seed}:" + ":".join(map(str, parts)))


def slugify(text: str) -> str:
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-zA-Z0-9]+", "-", t).strip("-").lower()[:80]


def initial_head(m: int) -> int:
    return m + 40


@dataclass(frozen=True)
class Item:
    seq: int
    category: str
    title: str
    link: str
    guid: tuple[str, bool] | None  # (value, isPermaLink)
    description: str
    content: str
    published: datetime  # aware, local offset
    author: str | None
    category_element: bool


def _sentence(r: random.Random, lo: int = 8, hi: int = 20) -> str:
    s = " ".join(r.choice(WORDS) for _ in range(r.randint(lo, hi)))
    return s[0].upper() + s[1:] + "."


def make_item(seed: int, feed: int, seq: int) -> Item:
    r = _rng(seed, "item", feed, seq)
    spec = _rng(seed, "feed", feed)
    interval_h = spec.uniform(18, 72)
    cat = r.choice(CATEGORIES)
    place = r.choice(PLACES)
    core = f"{r.choice(NOUNS).capitalize()} on {r.choice(TOPICS)} {r.choice(VERBS)} in {place}"
    slug = f"{slugify(core)}-{seq}"
    host = f"https://www.org{feed:04d}.example.org"
    link = host + ("//" if r.random() < 0.15 else "/") + f"news-centre/news-detail/{slug}/"
    g = r.random()
    guid = (link, True) if g < 0.7 else ((f"tx_ttnews-{feed}-{seq}", False) if g < 0.85 else None)
    when = EPOCH + timedelta(hours=seq * interval_h + r.uniform(0, interval_h * 0.8))
    local = when.astimezone(timezone(timedelta(hours=2 if 4 <= when.month <= 10 else 1)))
    paras, size, target = [], 0, r.randint(1024, 4096)
    while size < target:
        p = " ".join(html.escape(_sentence(r), quote=False) for _ in range(r.randint(2, 5)))
        if not paras:
            p = f"<strong>{html.escape(place)}, {local.day:02d} {MONTHS[local.month - 1]} " \
                f"{local.year}.</strong> {p}"
        if r.random() < 0.3:
            p += f' More on <a href="/themes/{slugify(place)}/">{html.escape(place)}</a>.'
        if r.random() < 0.15:
            p += f' <img src="fileadmin/img/{slug[:20]}.jpg" alt="{html.escape(place)}" />'
        paras.append(f"<p>{p}</p>")
        size += len(paras[-1])
    return Item(seq=seq, category=cat, title=f"{cat}: {core}", link=link, guid=guid,
                description=_sentence(r, 14, 30), content="\n".join(paras), published=local,
                author=r.choice(PEOPLE) if r.random() < 0.25 else None,
                category_element=r.random() < 0.6)


def window(head: int, m: int) -> range:
    return range(head, max(head - m, -1), -1)


def _x(s: str) -> str:
    return html.escape(s, quote=False)


def render_listing(seed: int, feed: int, m: int, head: int) -> bytes:
    """The same window as the feed, as the news centre's HTML listing page shows it: a
    block per entry (category, linked title, "31 March 2022" date, teaser), links relative
    to the page's <base>, navigation around the list."""
    host = f"https://www.org{feed:04d}.example.org/"
    blocks = []
    for it in (make_item(seed, feed, s) for s in window(head, m)):
        path = it.link.split(".example.org", 1)[1].lstrip("/")
        title = it.title.split(": ", 1)[1]
        when = f"{it.published.day} {MONTHS[it.published.month - 1]} {it.published.year}"
        blocks.append(
            f'<div class="news-item">\n  <span class="category">{_x(it.category)}</span>\n'
            f'  <h3><a href="{html.escape(path)}">{_x(title)}</a></h3>\n'
            f'  <p class="date">{when}</p>\n  <p class="teaser">{_x(it.description)}</p>\n'
            f"</div>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f"<title>News Centre | Org {feed}</title>\n<base href=\"{host}\">\n</head><body>\n"
            f'<nav class="main-nav"><a href="/">Home</a> <a href="/news-centre/">News</a></nav>\n'
            f'<main><h1>News Centre</h1><div class="news-list">\n' + "\n".join(blocks)
            + "\n</div></main>\n<footer><p>© Org</p></footer></body></html>\n").encode("utf-8")


def render_feed(seed: int, feed: int, m: int, head: int, dialect: str = "rss2") -> bytes:
    """One feed: 'rss2' (TYPO3 tt_news shape), 'rss1' (RDF) or 'atom', newest first."""
    items = [make_item(seed, feed, s) for s in window(head, m)]
    return {"rss2": _rss2, "rss1": _rss1, "atom": _atom}[dialect](feed, items).encode("utf-8")


def _rss2(feed: int, items: list[Item]) -> str:
    out = ['<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
           'xmlns:content="http://purl.org/rss/1.0/modules/content/">\n<channel>\n'
           f"<title>News Centre {feed}</title>\n<link>https://www.org{feed:04d}.example.org/</link>\n"
           "<description>NEWS CENTRE</description>\n<language>en</language>\n"
           f"<lastBuildDate>{format_datetime(items[0].published)}</lastBuildDate>\n"]
    for it in items:
        out.append(f"<item>\n<title>{_x(it.title)}</title>\n<link>{_x(it.link)}</link>\n"
                   f"<description>{_x(it.description)}</description>\n"
                   f"<content:encoded><![CDATA[{it.content}]]></content:encoded>\n")
        if it.category_element:
            out.append(f"<category>{_x(it.category)}</category>\n")
        if it.author:
            out.append(f"<author>press@org{feed:04d}.example.org ({_x(it.author)})</author>\n")
        if it.guid:
            attr = "" if it.guid[1] else ' isPermaLink="false"'
            out.append(f"<guid{attr}>{_x(it.guid[0])}</guid>\n")
        out.append(f"<pubDate>{format_datetime(it.published)}</pubDate>\n</item>\n")
    out.append("</channel>\n</rss>\n")
    return "".join(out)


def _rss1(feed: int, items: list[Item]) -> str:
    out = ['<?xml version="1.0" encoding="utf-8"?>\n<rdf:RDF '
           'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
           'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
           'xmlns:content="http://purl.org/rss/1.0/modules/content/">\n'
           f'<channel rdf:about="https://www.org{feed:04d}.example.org/">'
           f"<title>News Centre {feed}</title><link>https://www.org{feed:04d}.example.org/</link>"
           "<description>NEWS CENTRE</description><dc:language>de</dc:language></channel>\n"]
    for it in items:
        out.append(f'<item rdf:about="{_x(it.link)}"><title>{_x(it.title)}</title>'
                   f"<link>{_x(it.link)}</link><description>{_x(it.description)}</description>"
                   f"<content:encoded><![CDATA[{it.content}]]></content:encoded>"
                   f"<dc:date>{it.published.isoformat()}</dc:date>"
                   + (f"<dc:subject>{_x(it.category)}</dc:subject>" if it.category_element else "")
                   + (f"<dc:creator>{_x(it.author)}</dc:creator>" if it.author else "")
                   + "</item>\n")
    out.append("</rdf:RDF>\n")
    return "".join(out)


def _atom(feed: int, items: list[Item]) -> str:
    out = ['<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
           f'xml:lang="pt"><title>News Centre {feed}</title><id>urn:feed:{feed}</id>'
           f"<updated>{items[0].published.isoformat()}</updated>\n"]
    for it in items:
        ident = it.guid[0] if it.guid else it.link
        out.append(f"<entry><title>{_x(it.title)}</title>"
                   f'<link rel="alternate" href="{html.escape(it.link)}"/>'
                   f"<id>{_x(ident)}</id><updated>{it.published.isoformat()}</updated>"
                   f"<summary>{_x(it.description)}</summary>"
                   f'<content type="html">{_x(it.content)}</content>'
                   + (f'<category term="{html.escape(it.category)}"/>'
                      if it.category_element else "")
                   + (f"<author><name>{_x(it.author)}</name></author>" if it.author else "")
                   + "</entry>\n")
    out.append("</feed>\n")
    return "".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--m", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for i in range(a.n):
        (a.out / f"{i}.xml").write_bytes(render_feed(a.seed, i, a.m, initial_head(a.m)))


if __name__ == "__main__":
    main()

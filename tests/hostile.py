"""The hostile-input suite's machinery: case files, generated responses, a recording server.

A case is one TOML file in fixtures/hostile/: the response to serve at the source's
URL (or the name of a generator below, for bodies too big or too slow to keep in a
file), any other paths the document points at, and the outcome expected. `@BASE@`
in any string is the loopback server's base URL.
"""

from __future__ import annotations

import gzip
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import Any

from harvester.devserver import Response

from .conftest import FIXTURES

HOSTILE = FIXTURES / "hostile"
Generator = Callable[[BaseHTTPRequestHandler], Response | None]


@dataclass
class Case:
    name: str
    about: str
    covers: str
    response: dict[str, Any]
    routes: list[dict[str, Any]] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    http: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(HOSTILE.glob("*.toml")):
        data = tomllib.loads(path.read_text("utf-8"))
        cases.append(Case(name=path.stem, **data))
    return cases


def substitute(value: Any, base: str) -> Any:
    if isinstance(value, str):
        return value.replace("@BASE@", base)
    if isinstance(value, dict):
        return {k: substitute(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, base) for v in value]
    return value


def response(spec: dict[str, Any], base: str) -> Response | Generator:
    """A static Response, or a generator handler, from a case's response table."""
    spec = substitute(spec, base)
    if "generate" in spec:
        return GENERATORS[spec["generate"]](**spec.get("args", {}))
    if "body_file" in spec:
        body = (FIXTURES / spec["body_file"]).read_bytes()
        if "truncate" in spec:  # a fraction: the connection "broke" that far in
            body = body[:int(len(body) * spec["truncate"])]
    elif "body_hex" in spec:
        body = bytes.fromhex(spec["body_hex"])
    else:
        body = spec.get("body", "").encode(spec.get("body_encoding", "utf-8"))
    return Response(body, status=spec.get("status", 200),
                    content_type=spec.get("content_type", "application/rss+xml"),
                    headers=spec.get("headers", {}), conditional=spec.get("conditional", False))


# -- generators: responses too large, too slow or too clever for a file ----------------


def _raw(handler: BaseHTTPRequestHandler, head: bytes, body_chunks: Any = ()) -> None:
    try:
        handler.wfile.write(head)
        for chunk in body_chunks:
            handler.wfile.write(chunk)
            handler.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the harvester hung up: what it should do
    handler.close_connection = True


def raw_answer(head: str = "") -> Generator:
    """A server that is not (or no longer) HTTP: `head` as it is, then the connection
    closed — nothing at all, or a first line no HTTP answer starts with."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        _raw(h, head.encode("latin-1"))
    return handle


def gzip_bomb(megabytes: int = 64) -> Generator:
    """`megabytes` of zeros after a feed's opening, gzip-compressed to ~1/1000 the size."""
    raw = b'<?xml version="1.0"?><rss version="2.0"><channel><title>' + b"\0" * (
        megabytes << 20)
    packed = gzip.compress(raw, compresslevel=9, mtime=0)

    def handle(h: BaseHTTPRequestHandler) -> None:
        _raw(h, b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                b"Content-Encoding: gzip\r\nContent-Length: " + str(len(packed)).encode()
             + b"\r\nConnection: close\r\n\r\n", [packed])
    return handle


def endless(chunk_kb: int = 64) -> Generator:
    """A chunked body with no Content-Length that never ends."""
    chunk = b"<item><title>x</title></item>" * (chunk_kb * 1024 // 29)

    def handle(h: BaseHTTPRequestHandler) -> None:
        def chunks():
            while True:
                yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        _raw(h, b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", chunks())
    return handle


def drip(every: float = 0.25, headers_too: bool = False) -> Generator:
    """A byte every `every` seconds, forever: of the body, or of the headers themselves."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        def forever():
            while True:
                time.sleep(every)
                yield b" "
        if headers_too:
            _raw(h, b"HTTP/1.1 200 OK\r\nX-Slow:", forever())
        else:
            _raw(h, b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                    b"Content-Length: 100000\r\nConnection: close\r\n\r\n<rss", forever())
    return handle


def many_items(count: int = 10_000, duplicate_every: int = 0) -> Generator:
    """An RSS feed of `count` items (each guid repeated `duplicate_every` items later)."""
    parts = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>big'
             "</title>"]
    for i in range(count):
        n = i - 1 if duplicate_every and i and i % duplicate_every == 0 else i
        parts.append(f"<item><title>Item {n}</title><guid isPermaLink=\"false\">id-{n}</guid>"
                     f"<link>http://news.example/{n}</link>"
                     f"<pubDate>Wed, 27 May 2020 10:00:00 +0200</pubDate></item>")
    parts.append("</channel></rss>")
    body = "".join(parts).encode()
    return lambda h: Response(body, content_type="application/rss+xml", conditional=False)


def sitemap_urls(count: int = 60_000) -> Generator:
    """A sitemap of `count` pages, dated a second apart (the newest last, as CMSes write)."""
    urls = "".join(f"<url><loc>http://news.example/page-{i}</loc><lastmod>2020-05-27T"
                   f"{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z</lastmod></url>"
                   for i in range(count))
    body = ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/'
            f'schemas/sitemap/0.9">{urls}</urlset>').encode()
    return lambda h: Response(body, content_type="application/xml", conditional=False)


def tiny_items(count: int = 250_000, malformed: bool = False, dialect: str = "rss") -> Generator:
    """`count` items of a title each (~30 bytes: a few hundred thousand fit the body cap),
    in RSS or Atom; `malformed` puts a bare "&" in the channel title, so feedparser reads it."""
    title = "tiny & many" if malformed else "tiny"
    if dialect == "atom":
        head = f'<feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title>'
        entry, tail = "<entry><title>{}</title></entry>", "</feed>"
    else:
        head = f'<rss version="2.0"><channel><title>{title}</title>'
        entry, tail = "<item><title>{}</title></item>", "</channel></rss>"
    body = (head + "".join(entry.format(i) for i in range(count)) + tail).encode()
    return lambda h: Response(body, content_type="application/xml", conditional=False)


def many_tags(count: int = 2_500_000, inside: bool = False) -> Generator:
    """`count` empty elements (4 bytes each) in the channel beside one item, or `inside`:
    that many unclosed <b> in its description (malformed, so feedparser would read it)."""
    filler = "<b>" * count if inside else "<x/>" * count
    body = ('<rss version="2.0"><channel><title>t</title>' + ("" if inside else filler)
            + "<item><title>One</title><link>http://news.example/1</link><description>"
            + (filler if inside else "") + "</description></item></channel></rss>").encode()
    return lambda h: Response(body, content_type="application/rss+xml", conditional=False)


def long_list(count: int = 370_000, dated: bool = False) -> Generator:
    """A listing page of `count` one-link list entries (27 bytes each: 10 MB), or `dated`
    ones, each its own link and a date, as auto-detection finds them (~80 bytes)."""
    entry = ("<li><a href='/a{0}'>Entry {0}</a> <span class='date'>1 May 2020</span></li>"
             if dated else "<li><a href='/a'>t</a></li>")
    body = ("<html><body><ul>" + "".join(entry.format(i) for i in range(count))
            + "</ul></body></html>").encode()
    return lambda h: Response(body, content_type="text/html; charset=utf-8",
                              conditional=False)


def dense_fields(count: int = 550_000) -> Generator:
    """One item whose title and description are each `count` tiny elements of markup in a
    CDATA section (text to the XML parser, markup to the item's fields): 9 MB."""
    dense = "<b>x</b>" * count
    body = ('<rss version="2.0"><channel><title>t</title><item><title><![CDATA[' + dense
            + "]]></title><link>http://news.example/dense</link><description><![CDATA["
            + dense + "]]></description></item></channel></rss>").encode()
    return lambda h: Response(body, content_type="application/rss+xml", conditional=False)


def json_items(count: int = 3_000_000) -> Generator:
    """A JSON Feed of `count` empty items: three bytes each, millions under the body cap."""
    body = (b'{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": ['
            + b",".join([b"{}"] * count) + b"]}")
    return lambda h: Response(body, content_type="application/feed+json", conditional=False)


def huge_fields(title_kb: int = 100, summary_kb: int = 1024) -> Generator:
    title = "Launch " * (title_kb * 1024 // 7)
    summary = "word " * (summary_kb * 1024 // 5)
    body = (f'<rss version="2.0"><channel><title>c</title><item><title>{title}</title>'
            f"<link>http://news.example/huge</link><description>{summary}</description>"
            "</item></channel></rss>").encode()
    return lambda h: Response(body, content_type="application/rss+xml", conditional=False)


def long_link(kb: int = 1024, guid_kb: int = 0, query: str = "") -> Generator:
    """An item whose link is `kb` KB long (a megabyte by default), then `query`, or whose
    guid is `guid_kb` KB long."""
    link = "http://news.example/" + "a" * (kb * 1024) + query
    guid = "g" * (guid_kb * 1024) if guid_kb else "long-link-1"
    body = ('<rss version="2.0"><channel><title>c</title><item><title>Long link</title>'
            f"<link>{link}</link><guid>{guid}</guid><description>A summary</description>"
            "</item></channel></rss>").encode()
    return lambda h: Response(body, content_type="application/rss+xml", conditional=False)


def deep_nesting(tag: str = "div", depth: int = 200_000, close: str = "") -> Generator:
    """An item whose content opens `tag` `depth` deep (each open followed by `close`, an
    end tag that closes nothing): quadratic work for an HTML tree builder that looks
    through the open elements for every block it opens."""
    content = f"<{tag}>{close}" * depth + "Deep inside" + f"</{tag}>" * depth
    body = ('<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            "<channel><title>c</title><item><title>Nested deep</title>"
            "<link>http://news.example/deep</link><description>A summary</description>"
            f"<content:encoded><![CDATA[{content}]]></content:encoded></item>"
            "</channel></rss>").encode()
    return lambda h: Response(body, content_type="application/rss+xml", conditional=False)


def paged(pages: int = 50) -> Generator:
    """A listing whose every page links to the next, forever (or `pages` deep)."""
    def handle(h: BaseHTTPRequestHandler) -> Response:
        n = int(h.path.rsplit("/", 1)[-1] or 1) if h.path.startswith("/page/") else 1
        items = "".join(f'<li class="news"><a href="/news/{n}-{i}">Story {n}.{i}</a>'
                        f'<span class="date">2{i}.05.2020</span></li>' for i in range(3))
        nxt = f'<a class="next" href="/page/{n + 1}">next</a>' if n < pages else ""
        return Response(f"<html><body><ul>{items}</ul>{nxt}</body></html>".encode(),
                        content_type="text/html; charset=utf-8", conditional=False)
    return handle


def quadratic(entity_kb: int = 50, refs: int = 5000) -> Generator:
    """One large entity referenced thousands of times: no nesting, so no 'depth' limit."""
    body = ('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x "' + "x" * (entity_kb * 1024)
            + '">]><rss version="2.0"><channel><title>q</title><item><title>Blowup '
            + "&x;" * refs + "</title><link>http://news.example/q</link></item>"
            "</channel></rss>").encode()
    return lambda h: Response(body, content_type="application/rss+xml", conditional=False)


def flaky(status: int = 503, retry_after: str = "1", then_file: str = "") -> Generator:
    """`status` with Retry-After once, then the fixture file: a blip worth waiting out."""
    calls = [0]
    body = (FIXTURES / then_file).read_bytes()

    def handle(h: BaseHTTPRequestHandler) -> Response:
        calls[0] += 1
        if calls[0] == 1:
            return Response(b"busy", status=status, content_type="text/plain",
                            headers={"Retry-After": retry_after}, conditional=False)
        return Response(body, conditional=False)
    return handle


def with_guids(file: str, prefix: str = "cms-v2-") -> Generator:
    """A fixture feed whose items gained (new) guids while their links stayed."""
    text = (FIXTURES / file).read_text("utf-8")
    parts = text.split("<item>")
    text = parts[0] + "".join(f'<item>\n\t\t<guid isPermaLink="false">{prefix}{i}</guid>{p}'
                              for i, p in enumerate(parts[1:]))
    body = text.encode()
    return lambda h: Response(body, conditional=False)


def retry_after_date(status: int = 503, seconds: int = 7200) -> Generator:
    """An error whose Retry-After is an HTTP date `seconds` from the real now."""
    def handle(h: BaseHTTPRequestHandler) -> Response:
        return Response(b"busy", status=status, content_type="text/plain", conditional=False,
                        headers={"Retry-After": formatdate(time.time() + seconds, usegmt=True)})
    return handle


GENERATORS: dict[str, Callable[..., Generator]] = {
    f.__name__: f for f in (gzip_bomb, endless, drip, many_items, huge_fields, paged, quadratic, flaky, with_guids,
                            retry_after_date, deep_nesting, long_link, tiny_items, json_items, many_tags, long_list, dense_fields,
                            sitemap_urls, raw_answer)
}

__all__ = ["HOSTILE", "Case", "load_cases", "response", "substitute"]

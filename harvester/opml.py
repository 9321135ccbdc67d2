"""OPML, the subscription list feed readers share: read one into `[[sources]]` blocks to
paste into the config, and write the configured feeds out as one."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from lxml import etree

from .configfile import toml_string
from .errors import ParseError, printable
from .parse.encoding import to_utf8
from .parse.feed import without_dtd, without_surrogate_refs
from .text import strip_controls

_SLUG = re.compile(r"[^a-z0-9]+")
_BREAKS = re.compile(r"[\t\n\r]")


@dataclass(frozen=True, slots=True)
class Subscription:
    title: str
    url: str


def read_opml(body: bytes) -> list[Subscription]:
    """Every outline with an xmlUrl, at any depth, in document order; a file that is not
    OPML is a ParseError naming why. No entity from the file is expanded."""
    # as for feeds: the DTD goes first (entities declared there are never expanded, and an
    # undefined one is passed over), and readers' exports are not all well-formed
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, recover=True)
    try:
        # decoded as a feed is (labels reconciled, bad bytes replaced, &#xD800; made
        # U+FFFD's): lxml's recover mode keeps either in an attribute, which then fails
        # to read
        root = etree.fromstring(without_surrogate_refs(without_dtd(to_utf8(body).body)),
                                parser)
    except etree.XMLSyntaxError as e:
        raise ParseError(f"not OPML: {e}") from e
    if root is None:
        raise ParseError("not OPML: no XML document in it")
    if not isinstance(root.tag, str) or root.tag.lower() != "opml":
        raise ParseError(f"not OPML: the document is <{root.tag}>, not <opml>")
    out = []
    for el in root.iter("outline"):
        url = (el.get("xmlUrl") or el.get("xmlurl") or "").strip()
        if url:
            title = strip_controls(el.get("title") or el.get("text") or "")
            # tabs and line breaks, which strip_controls keeps for text, are no part of
            # a URL: a URL parser drops them (WHATWG), and the config refuses them
            out.append(Subscription(" ".join(title.split()),
                                    _BREAKS.sub("", strip_controls(url))))
    return out


@dataclass(frozen=True, slots=True)
class Import:
    """What an OPML file adds to a config: its new feeds, and what it leaves out."""

    new: tuple[Subscription, ...]
    already: int  # feeds the config has
    repeated: int  # listed more than once in the file
    left_out: tuple[tuple[str, str], ...]  # (why, URL) of each the config would refuse

    @property
    def naming(self) -> int:
        """New feeds whose URL holds ${NAME}, which `sources_toml` writes %24{NAME}."""
        from .config import env_refs

        return sum(1 for s in self.new if env_refs(s.url))


def plan_import(subs: Sequence[Subscription], configured_urls: Iterable[str]) -> Import:
    """The file's feeds the config does not poll yet, each once. A feed is the same by its
    canonical URL (as `add` has it): `HTTPS://WWW.ICMPD.ORG:443/news-centre/rss#top` is
    the configured `https://www.icmpd.org/news-centre/rss`. One the config would refuse is
    left out, so every block printed loads."""
    from .urls import canonical_url

    def same(url: str) -> str:
        return canonical_url(url) or url

    have, seen = {same(u) for u in configured_urls}, set()
    new, already, repeated, left_out = [], 0, 0, []
    for sub in subs:
        url = same(sub.url)
        if url in have:
            already += 1
        elif url in seen:
            repeated += 1
        elif (why := _refused(sub.url)) is not None:
            left_out.append(why)
        else:
            new.append(sub)
        seen.add(url)
    return Import(tuple(new), already, repeated, tuple(left_out))


def _refused(url: str) -> tuple[str, str] | None:
    """(why, the URL as it may be shown) for a URL the config would refuse as a source's."""
    from .urls import bad_port, is_http_url

    if not url.lower().startswith(("http://", "https://")):
        return "not http(s)", url
    if bad_port(url):
        return "no port from 1 to 65535", url
    if not is_http_url(url):
        return "no host a request can go to", url
    parts = urlsplit(url)
    if "@" in parts.netloc:  # shown without them: a password is no thing to print
        return ("a user and password in its URL, which harvester never sends (`harvester "
                "add URL -H 'Authorization: Basic …'` writes them as a header)",
                urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])))
    return None


def source_name(title: str, url: str, taken: set[str]) -> str:
    """A source name (letters, digits, '-'; up to 64) from a title, else the URL's host,
    made unique among `taken`."""
    base = _SLUG.sub("-", (title or url.split("//", 1)[-1]).lower()).strip("-")[:56] or "feed"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(name)
    return name


def source_block(name: str, kind: str, url: str, comment: str = "") -> str:
    """One `[[sources]]` table's first lines, as `opml import`, `probe` and `init` print
    them (a comment beside the header when there is one)."""
    note = f"  # {printable(comment)}" if comment else ""  # a site's or a reader's words
    return f'[[sources]]{note}\nname = "{name}"\nkind = "{kind}"\nurl = {toml_string(url)}\n'


def sources_toml(subs: Iterable[Subscription], taken: set[str]) -> str:
    """`[[sources]]` blocks, one a subscription; `taken` names are avoided (and grow). A
    ${NAME} in a URL is the list's, not a variable of the user's: written %24{NAME}."""
    from .config import as_written

    return "\n".join(source_block(source_name(s.title, s.url, taken), "feed",
                                   as_written(s.url), s.title) for s in subs)


def write_opml(subs: Sequence[Subscription], title: str = "harvester") -> bytes:
    root = etree.Element("opml", version="2.0")
    etree.SubElement(etree.SubElement(root, "head"), "title").text = title
    body = etree.SubElement(root, "body")
    for s in subs:
        etree.SubElement(body, "outline", type="rss", text=s.title, title=s.title,
                         xmlUrl=s.url)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


__all__ = ["Import", "Subscription", "plan_import", "read_opml", "source_block", "source_name",
           "sources_toml", "write_opml"]

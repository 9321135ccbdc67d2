"""What a document may make a parser build, checked before it builds anything."""

from __future__ import annotations

import re

from ..errors import ParseError

# Tags ("<") an XML or HTML document may hold. lxml's tree costs ~140–370 bytes a node:
# 2.5 million empty elements fit the 10 MB body cap and made a 350 MB tree. A feed of
# 20,000 rich entries, or a listing page of thousands, stays well below this.
MAX_MARKUP_TAGS = 500_000


_CDATA = re.compile(rb"<!\[CDATA\[.*?\]\]>", re.DOTALL)


def cdata_tags(body: bytes) -> int:
    """The "<"s inside CDATA sections: markup that an XML parser reads as text, builds no
    node of, and a feed's HTML content is often wrapped in."""
    return sum(m.group().count(b"<") for m in _CDATA.finditer(body))


def check_tags(tags: int, what: str, *, source: str | None, url: str) -> None:
    """ParseError when `tags` (a document's count of "<") passes MAX_MARKUP_TAGS."""
    if tags > MAX_MARKUP_TAGS:
        raise ParseError(f"not read: {tags:,} tags in the {what}, more than {MAX_MARKUP_TAGS:,}",
                         source=source, url=url)


__all__ = ["MAX_MARKUP_TAGS", "cdata_tags", "check_tags"]

"""Messages as text and as (escaped, sanitised) HTML; shared by the channels."""

from __future__ import annotations

import html
import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..dates import shown_when
from ..edits import Hunk
from ..words import counted
from .base import Message

_CRLF = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")


def header_safe(text: str, limit: int = 200) -> str:
    """A header value: no CR/LF or controls (no header injection), bounded length, and no
    RFC 2047 encoded word: the email package decodes "=?utf-8?q?a=0D=0ABcc:…?=" when the
    header is set and writes the CR/LF it hides out raw. A zero-width space after the "="
    keeps the feed's text as text."""
    text = " ".join(_CRLF.sub(" ", text).split()).replace("=?", "=\u200b?")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _meta(m: Message) -> str:
    """'2020-05-20 09:41 CEST · icmpd-rss · rules: press-release': an item's when (in its
    source's zone, as the source gave it) and why; an edit's, when it was seen too (a
    watched page's own date is only when it was first seen)."""
    meta = [shown_when(m.item.get("published"), m.zone), m.source]
    if m.event == "item.changed":
        meta.insert(1, "updated " + shown_when(m.created_at, m.zone))
    if m.rules:
        meta.append("rules: " + ", ".join(m.rules))
    return " · ".join(x for x in meta if x)


def _summary(m: Message, limit: int | None) -> str:
    text = m.item.get("summary") or ""
    return text if limit is None or len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plain_text(m: Message, summary_limit: int | None = None) -> str:
    lines = [f"== {m.headline()}"]
    if m.is_item:
        lines.append("   " + _meta(m))
        if m.item.get("url"):
            lines.append("   " + m.item["url"])
        if m.item.get("summary"):
            lines.append("   " + _summary(m, summary_limit))
        for ch in m.changes:
            lines.append(f"   {ch.label} changed" + (":" if ch.diff else ""))
            lines += [f"     {d}" for d in ch.lines()]
    else:
        for k in ("url", "error", "since"):
            if m.data.get(k):
                lines.append(f"   {k}: {m.data[k]}")
    return "\n".join(lines)


# how a word hunk's changes are marked: in an email, struck through and underlined in
# colour; Matrix clients keep only the tags of its HTML subset, without styles
_EMAIL_MARKS = {"=": "{}", "-": '<del style="color:#a00">{}</del>',
                "+": '<ins style="color:#070">{}</ins>'}
_MATRIX_MARKS = {"=": "{}", "-": "<del>{}</del>", "+": "<u>{}</u>"}


def _html_one(m: Message, marks: Mapping[str, str] = _EMAIL_MARKS,
              summary_limit: int | None = None) -> str:
    e = html.escape
    parts = [f"<h2>{e(m.headline())}</h2>"]
    if m.is_item:
        url = m.item.get("url") or ""
        parts.append(f"<p><small>{e(_meta(m))}</small></p>")
        if m.item.get("summary"):
            parts.append(f"<p>{e(_summary(m, summary_limit))}</p>")
        # stored URLs are canonical http(s) only; escape anyway, never trust a field
        if url.startswith(("http://", "https://")):
            parts.append(f'<p><a href="{e(url, quote=True)}">{e(url)}</a></p>')
        for ch in m.changes:
            parts.append(f"<p><b>{e(ch.label)} changed</b></p>")
            if ch.words:
                parts += [f"<p>{_html_hunk(h, marks)}</p>" for h in ch.words]
            elif ch.diff:
                parts.append("<ul>" + "".join(map(_diff_line, ch.diff)) + "</ul>")
    else:
        for k in ("url", "error", "since"):
            if m.data.get(k):
                parts.append(f"<p><b>{e(k)}</b>: {e(str(m.data[k]))}</p>")
    return "\n".join(parts)


def _html_hunk(hunk: Hunk, marks: Mapping[str, str]) -> str:
    return " ".join(marks[op].format(html.escape(text)) for op, text in hunk)


def _diff_line(line: str) -> str:
    tag = {"-": "del", "+": "ins"}.get(line[:1])
    body = html.escape(line[1:])
    return f"<li><{tag}>{body}</{tag}></li>" if tag else f"<li>{body}</li>"


def by_source(messages: Sequence[Message]) -> list[tuple[str, list[Message]]]:
    """A digest's messages by source, each source where its first message stood: a day's
    news from several sites reads site by site, not interleaved."""
    groups: dict[str, list[Message]] = {}
    for m in messages:
        groups.setdefault(m.source, []).append(m)
    return list(groups.items())


@dataclass(frozen=True, slots=True)
class Cut:
    """How much of a digest an email shows: the first `shown` messages, each summary up to
    `summary` characters; the rest are counted at its end. A day's flood must not become
    a message the mail server refuses for its size (and that is then never delivered)."""

    shown: int | None = None
    summary: int | None = None


# A digest lists 200 messages at most, each summary up to 600 characters: ~0.5 MB however
# many there are (1,000 items with 5,000-character summaries made a 10.7 MB email, past
# many mail servers' limit, and a refused message is dead, its news never told).
DIGEST_CUT = Cut(shown=200, summary=600)


def text_message(messages: Sequence[Message], digest: bool) -> str:
    """The message as text: its subject, a blank line, the body an email's text part has."""
    return (f"{subject(messages, digest)}\n\n"
            + text_body(messages, DIGEST_CUT if digest else Cut()))


_Shown = tuple[str, list[Message], list[Message]]  # a source, all its messages, those shown


def _shown(messages: Sequence[Message], cut: Cut) -> tuple[list[_Shown], str, bool]:
    """Per source, what of it is shown; the line counting the rest; and whether there is
    more than one source (each then under its heading)."""
    groups = by_source(messages)
    left = len(messages) if cut.shown is None else cut.shown
    out = []
    for source, ms in groups:
        if left <= 0:
            break
        out.append((source, ms, ms[:left]))
        left -= len(ms)
    more = len(messages) - sum(len(shown) for _, _, shown in out)
    tail = (f"… and {counted(more, 'more notification')} (harvester outbox lists them)"
            if more else "")
    return out, tail, len(groups) > 1


def text_body(messages: Sequence[Message], cut: Cut = Cut()) -> str:
    """The plain-text part: each message's block; under a line per source when a digest
    holds more than one."""
    groups, tail, many = _shown(messages, cut)
    blocks = ["\n\n".join(plain_text(m, cut.summary) for m in shown) if not many
              else f"# {source}: {tally(ms)}\n\n"
              + "\n\n".join(plain_text(m, cut.summary) for m in shown)
              for source, ms, shown in groups]
    return "\n\n".join([*blocks, tail] if tail else blocks) + "\n"


def html_fragment(messages: Sequence[Message],
                  marks: Mapping[str, str] = _EMAIL_MARKS, cut: Cut = Cut()) -> str:
    """The messages as HTML, every field escaped; under a heading per source when they
    come from more than one."""
    groups, tail, many = _shown(messages, cut)
    e = html.escape
    if not many:
        body = "\n<hr>\n".join(_html_one(m, marks, cut.summary) for _, _, shown in groups
                                for m in shown)
    else:
        body = "\n".join(f"<h1>{e(source)} <small>{e(tally(ms))}</small></h1>\n"
                          + "\n<hr>\n".join(_html_one(m, marks, cut.summary) for m in shown)
                          for source, ms, shown in groups)
    return body + (f"\n<p><i>{e(tail)}</i></p>" if tail else "")


def html_document(messages: Sequence[Message], cut: Cut = Cut()) -> str:
    return (f'<!DOCTYPE html>\n<html><body>\n{html_fragment(messages, cut=cut)}\n'
            "</body></html>\n")


# Matrix refuses an event over 65,536 bytes; a message's JSON is kept under this many
MATRIX_LIMIT = 60_000


def matrix_message(messages: Sequence[Message], digest: bool) -> dict[str, Any]:
    """An m.room.message event: the plain-text part as its body, the email's HTML (in
    Matrix's tag subset) as its formatted body. A message, not a notice: clients keep
    notices quiet by default. Past MATRIX_LIMIT, as many of the first messages as fit,
    and a line saying how many more there were."""
    shown = list(messages)
    while True:
        more = len(messages) - len(shown)
        tail = (f"… and {counted(more, 'more notification')} (harvester outbox lists them)"
                if more else "")
        head = subject(messages, True) if digest or len(messages) > 1 else ""
        text = "\n\n".join(filter(None, (head, text_body(shown).rstrip("\n"), tail)))
        formatted = "\n".join(filter(None, (
            f"<p><b>{html.escape(head)}</b></p>" if head else "",
            html_fragment(shown, _MATRIX_MARKS), f"<p><i>{html.escape(tail)}</i></p>" if tail
            else "")))
        event = {"msgtype": "m.text", "body": text, "format": "org.matrix.custom.html",
                 "formatted_body": formatted}
        if len(shown) == 1 or len(json.dumps(event, ensure_ascii=False).encode()) <= MATRIX_LIMIT:
            return event
        shown = shown[: len(shown) * 3 // 4]


# Chat services read their own markup in a message's text: feed text is escaped for it,
# so a title can neither format nor mention (Slack's <!channel>) nor fake a link.
_ESCAPES = {"slack": str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"}),
            "discord": str.maketrans({c: "\\" + c for c in "\\*_~`|>[]#@<"})}
_ESCAPES["telegram"] = _ESCAPES["slack"]  # its HTML mode: text needs &, < and > escaped
CHAT_LIMITS = {"slack": 4000, "discord": 2000}  # characters of text a message may carry
# Telegram takes up to 4,096 characters of text a message; the markup is kept under it
TELEGRAM_LIMIT = 4000
_LIMITS = {**CHAT_LIMITS, "telegram": TELEGRAM_LIMIT}
_BOLD = {"slack": ("*", "*"), "discord": ("**", "**"), "telegram": ("<b>", "</b>")}
_ITALIC = {"slack": ("_", "_"), "discord": ("*", "*"), "telegram": ("<i>", "</i>")}
_ENTITY_CUT = re.compile(r"&[#a-z0-9]*$")  # "&am": an entity the cut broke


def _escaped(text: str, style: str, width: int) -> str:
    """`text` escaped for the service, in at most `width` characters: a longer one is cut
    on a whole character and ends "…" (a cut "&am" or a lone Discord backslash would show
    as written, or escape the "…")."""
    out = text.translate(_ESCAPES[style])
    if len(out) <= width:
        return out
    cut = out[: width - 1]
    if style == "discord":
        if (len(cut) - len(cut.rstrip("\\"))) % 2:
            cut = cut[:-1]
    else:
        cut = _ENTITY_CUT.sub("", cut)
    return cut + "…"


def _chat_link(url: str, style: str) -> str:
    if style == "slack":
        return f"<{url.translate(_ESCAPES[style])}>"
    if style == "telegram":
        return f'<a href="{html.escape(url, quote=True)}">{html.escape(url)}</a>'
    return url


def _chat_block(m: Message, style: str) -> list[str]:
    """One notification's lines, none longer than half a message: text cut where no escape
    breaks, markup (the headline's bold, a link) always whole. A link too long for that is
    left out: cut, it would lead elsewhere, and in Telegram its broken tag had the whole
    message refused."""
    width = _LIMITS[style] // 2
    start, end = _BOLD[style]
    lines = [f"{start}{_escaped(m.headline(), style, width - len(start + end))}{end}"]
    if m.is_item:
        lines.append(_escaped(_meta(m), style, width))
        url = m.item.get("url") or ""
        if url.startswith(("http://", "https://")):  # stored links are canonical http(s)
            link = _chat_link(url, style)
            if len(link) <= width:
                lines.append(link)
        if m.item.get("summary"):
            lines.append(_escaped(m.item["summary"], style, width))
        for ch in m.changes:
            lines.append(f"{ch.label} changed" + (":" if ch.diff else ""))
            lines += [_escaped(f"    {d}", style, width) for d in ch.lines()]
    else:
        lines += [_escaped(f"{k}: {m.data[k]}", style, width) for k in ("url", "error", "since")
                  if m.data.get(k)]
    return lines


def chat_text(messages: Sequence[Message], digest: bool, style: str) -> str:
    """One chat message ("slack": Slack, Mattermost, Rocket.Chat; "discord"; "telegram":
    its HTML) for one notification or a digest, escaped for the service and within its
    limit: whole blocks while they fit, then a line saying how many more there were (a
    block too long alone: as many of its lines as fit). Ends between lines, so no markup
    is cut in two."""
    budget = _LIMITS[style] - 80  # room for the line saying how many more
    head = subject(messages, True) if digest or len(messages) > 1 else ""
    parts = [_escaped(head, style, budget) if style != "telegram"
             else f"<b>{html.escape(head)}</b>"] if head else []
    used, shown = len(parts[0]) if parts else 0, 0
    for m in messages:
        lines = _chat_block(m, style)
        block = "\n".join(lines)
        if used + len(block) + 2 > budget:
            if shown == 0:
                while lines and used + len("\n".join(lines)) + 4 > budget:
                    lines.pop()
                parts.append("\n".join([*lines, "…"]))
                shown = 1
            break
        parts.append(block)
        used += len(block) + 2
        shown += 1
    if shown < len(messages):
        start, end = _ITALIC[style]
        more = counted(len(messages) - shown, "more notification")
        parts.append(f"{start}… and {more} (harvester outbox lists them){end}")
    return "\n\n".join(parts)


# Teams refuses a message over ~28 KB; the card's JSON is kept under this many bytes
TEAMS_LIMIT = 24_000


def _run(text: str, **style: Any) -> dict[str, Any]:
    # a TextRun shows its text as written: no Markdown, no mention. Only the {{DATE(…)}}
    # and {{TIME(…)}} functions would still be read; a zero-width space keeps them text.
    return {"type": "TextRun", "text": text.replace("{{", "{\u200b{"), **style}


def _rich(*runs: dict[str, Any]) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(runs)}


def _teams_blocks(m: Message) -> list[dict[str, Any]]:
    url = (m.item.get("url") or "") if m.is_item else ""
    link = ({"selectAction": {"type": "Action.OpenUrl", "url": url}}
            if url.startswith(("http://", "https://")) else {})  # the stored canonical link
    head = _rich(_run(m.headline(), weight="Bolder", **link))
    blocks = [{**head, "separator": True}]
    if m.is_item:
        blocks.append(_rich(_run(_meta(m), isSubtle=True, size="Small")))
        if m.item.get("summary"):
            blocks.append(_rich(_run(m.item["summary"])))
        for ch in m.changes:
            blocks.append(_rich(_run(f"{ch.label} changed" + (":" if ch.diff else ""))))
            if ch.diff:
                blocks.append(_rich(_run("\n".join(ch.lines()), fontType="Monospace")))
    else:
        lines = [f"{k}: {m.data[k]}" for k in ("url", "error", "since") if m.data.get(k)]
        if lines:
            blocks.append(_rich(_run("\n".join(lines))))
    return blocks


def teams_card(messages: Sequence[Message], digest: bool) -> dict[str, Any]:
    """A Teams message holding one Adaptive Card, as a Teams workflow's "post a card when
    a webhook request is received" takes it. Feed text goes in TextRuns, which Teams shows
    as written; the only link is the item's own. Past TEAMS_LIMIT the card says how many
    more notifications there were instead of carrying them."""
    body: list[dict[str, Any]] = []
    if digest or len(messages) > 1:
        body.append(_rich(_run(subject(messages, True), weight="Bolder", size="Large")))
    budget = TEAMS_LIMIT
    for i, m in enumerate(messages):
        blocks = _teams_blocks(m)
        size = len(json.dumps(blocks, ensure_ascii=False).encode())
        if size > budget:
            body.append(_rich(_run(f"… and {counted(len(messages) - i, 'more notification')}"
                                   " (harvester outbox lists them)", isSubtle=True)))
            break
        budget -= size
        body += blocks
    if body:
        body[0].pop("separator", None)  # nothing above the first block to separate it from
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard", "version": "1.4", "msteams": {"width": "Full"},
            "body": body}
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
        "content": card}]}


# ntfy takes a message of up to 4,096 bytes as text (a longer one becomes an attachment,
# or is refused); a message is kept under this many
NTFY_LIMIT = 4000
# how an operators' event stands out on a phone: ntfy's priority (3 is its default) and
# tags, which it shows as emoji
_NTFY_EVENT = {"source.failing": (4, ["warning"]), "source.recovered": (3, ["white_check_mark"])}


def _ntfy_body(m: Message) -> str:
    """plain_text's block without its headline (ntfy shows that as the title)."""
    return textwrap.dedent("\n".join(plain_text(m).splitlines()[1:]))


def ntfy_message(messages: Sequence[Message], digest: bool, topic: str) -> dict[str, Any]:
    """One ntfy message (its JSON publishing form) for a notification or a digest: plain
    text, which ntfy shows as written; a click opens the item's own link. Past NTFY_LIMIT
    bytes the message says how many more notifications there were instead."""
    if not digest and len(messages) == 1:
        m = messages[0]
        priority, tags = _NTFY_EVENT.get(m.event, (3, list(m.rules)))
        url = (m.item.get("url") or "") if m.is_item else ""
        body = _ntfy_body(m).encode()
        if len(body) > NTFY_LIMIT:  # cut on a character, not in one: "…" is 3 bytes
            body = body[: NTFY_LIMIT - 3].decode(errors="ignore").encode() + "…".encode()
        msg = {"topic": topic, "title": header_safe(m.headline(), 250),
               "message": body.decode(), "tags": tags, "priority": priority}
        if url.startswith(("http://", "https://")):  # the stored canonical link
            msg["click"] = url
        return msg
    blocks, budget = [], NTFY_LIMIT
    for i, m in enumerate(messages):
        block = f"{m.headline()}\n{_ntfy_body(m)}".rstrip()
        size = len(block.encode()) + 2
        if size > budget - 80:  # room for the line that says what is left out
            blocks.append(f"… and {counted(len(messages) - i, 'more notification')}"
                          " (harvester outbox lists them)")
            break
        budget -= size
        blocks.append(block)
    rules = sorted({r for m in messages for r in m.rules})
    return {"topic": topic, "title": subject(messages, True), "message": "\n\n".join(blocks),
            "tags": rules, "priority": 3}


def tally(messages: Sequence[Message]) -> str:
    """What a batch holds, in words: "3 new items, 1 edited, 1 source alert"."""
    events = [m.event for m in messages]
    new, edited = events.count("item.new"), events.count("item.changed")
    other = len(events) - new - edited
    parts = [counted(new, "new item") if new else "", f"{edited} edited" if edited else "",
             counted(other, "source alert") if other else ""]
    return ", ".join(p for p in parts if p)


def telegram_message(messages: Sequence[Message], digest: bool,
                     chat_id: str | int) -> dict[str, Any]:
    """A Telegram Bot API sendMessage body for one notification or a digest, in its HTML
    parse mode: every feed word escaped (Telegram refuses a message whose markup it cannot
    read, and a title must not format), fitted to TELEGRAM_LIMIT between lines."""
    return {"chat_id": chat_id, "text": chat_text(messages, digest, "telegram"),
            "parse_mode": "HTML", "link_preview_options": {"is_disabled": True}}


def subject(messages: Sequence[Message], digest: bool) -> str:
    if digest or len(messages) > 1:
        # what is in it, so the reader knows before opening: "(3 new items, 1 edited)"
        return header_safe(f"harvester: {counted(len(messages), 'notification')}"
                           f" ({tally(messages)})")
    return header_safe(messages[0].headline())


__all__ = ["CHAT_LIMITS", "DIGEST_CUT", "MATRIX_LIMIT", "NTFY_LIMIT", "TEAMS_LIMIT",
           "TELEGRAM_LIMIT", "Cut", "by_source", "chat_text", "header_safe", "html_document",
           "html_fragment", "matrix_message", "ntfy_message", "plain_text", "subject", "tally",
           "teams_card", "telegram_message", "text_body", "text_message"]

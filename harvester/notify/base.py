"""What every channel shares: the message it is given and the outcome it answers with."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from ..diff import notification_id
from ..edits import FieldChange, edit_of, field_changes
from ..errors import printable
from ..words import counted

MAX_DIFF_LINES = 40  # of each field an edit changed, in a message


class OutcomeKind(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # worth trying again later (network, 429, 5xx, 4xx SMTP)
    DEAD = "dead"  # will never work as it is (other 4xx, 5xx SMTP)
    GONE = "gone"  # the receiver says it is gone for good (410): disable the notifier


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a send went. `detail` and `response` quote the receiver, the relay or the
    program (its answer, its last line of output): they are kept as printable text, so
    `outbox` and `notify-test` show what it said, never run it as terminal commands."""

    kind: OutcomeKind
    detail: str = ""
    response: str | None = None  # what the server answered, kept in the outbox row
    retry_after: float | None = None  # seconds, when the server said so

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", printable(self.detail))
        if self.response is not None:
            object.__setattr__(self, "response", printable(self.response))


@dataclass(frozen=True, slots=True)
class Message:
    """One outbox row ready to send: an item event, or a source event for operators."""

    id: str  # the notification's id: stable across retries, so resends can be told apart
    notifier: str
    event: str  # item.new | item.changed | source.failing | source.recovered | test
    source: str
    created_at: str
    rules: tuple[str, ...] = ()
    item: dict[str, Any] = field(default_factory=dict)  # id, title, category, url, …
    data: dict[str, Any] = field(default_factory=dict)  # source events: error, failures, since
    changes: tuple[FieldChange, ...] = ()  # item.changed: what this edit changed
    zone: str = "UTC"  # where its dates are shown: its source's zone, as it read them

    @property
    def is_item(self) -> bool:
        return self.event.startswith("item.")

    def follows(self) -> str | None:
        """The id of the notification this one follows up, so a mail client can thread them:
        an edit follows its item's news, a recovery the failure alert (which may never have
        been sent to this notifier: a reference to it is harmless then)."""
        if self.event == "item.changed" and self.item.get("id"):
            return notification_id(self.notifier, self.item["id"], "item.new")
        if self.event == "source.recovered" and self.data.get("since"):
            return notification_id(self.notifier, f"source:{self.source}", "source.failing",
                                   self.data["since"])
        return None

    def headline(self) -> str:
        """One line naming what happened, for a subject or a console heading."""
        if self.event == "source.failing":
            n = int(self.data.get("failures", 0))  # source_events always writes it
            return f"Source failing: {self.source} ({counted(n, 'poll')} in a row)"
        if self.event == "source.recovered":
            return f"Source recovered: {self.source}"
        if self.event == "source.silent":
            n = int(self.data.get("days", 0))
            return f"Source silent: {self.source} (no new item for {counted(n, 'day')})"
        if self.event == "test":
            return "harvester test notification"
        title = self.item.get("title") or "(untitled)"
        cat = self.item.get("category")
        text = f"{cat}: {title}" if cat else title
        return f"Updated: {text}" if self.event == "item.changed" else text


def message_from_row(row: dict[str, Any], versions: Sequence[dict[str, Any]] = (),
                     zone: str = "UTC") -> Message:
    """An outbox row joined with its item (store.claim_due) → Message. For item.changed,
    `versions` are the item's earlier versions: the message says what its edit changed,
    even if the item has been edited again since. `zone`: its source's time zone."""
    item: dict[str, Any] = {}
    if row.get("item_id") and not str(row["item_id"]).startswith("source:"):
        item = {"id": row["item_id"], "title": row.get("title"), "category": row.get("category"),
                "url": row.get("url"), "published": row.get("published"),
                "summary": row.get("summary"), "first_seen": row.get("first_seen")}
    changes: tuple[FieldChange, ...] = ()
    if row["event"] == "item.changed" and versions:
        current = {**row, "content_hash": row.get("item_hash")}
        edit = edit_of(current, versions, row.get("ref") or "")
        if edit is not None:
            changes = field_changes(*edit, max_lines=MAX_DIFF_LINES)
    rules = tuple(json.loads(row["rules"])) if row.get("rules") else ()
    data = json.loads(row["data"]) if row.get("data") else {}
    return Message(id=row["id"], notifier=row["notifier"], event=row["event"],
                   source=row.get("source") or "", created_at=row["created_at"], rules=rules,
                   item=item, data=data, changes=changes, zone=zone)


class Channel(Protocol):
    """A way to tell people. `send` never raises for delivery problems: it answers."""

    def send(self, messages: Sequence[Message], *, digest: bool) -> Outcome: ...


__all__ = ["Channel", "Message", "Outcome", "OutcomeKind", "message_from_row"]

"""The console channel: a readable block per item on stdout — what cron mails its owner."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from ..words import counted
from .base import Message, Outcome, OutcomeKind
from .render import plain_text


class ConsoleChannel:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def send(self, messages: Sequence[Message], *, digest: bool) -> Outcome:
        out = self.stream or sys.stdout
        if digest:
            out.write(f"== {counted(len(messages), 'notification')}\n")
        for m in messages:
            out.write(plain_text(m) + "\n")
        out.flush()
        return Outcome(OutcomeKind.SENT)

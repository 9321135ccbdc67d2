"""Notifications: one module per channel behind one small interface, and the outbox
delivery loop that drives them."""

from .base import Channel, Message, Outcome, OutcomeKind
from .deliver import DeliveryReport, deliver, make_channel

__all__ = ["Channel", "DeliveryReport", "Message", "Outcome", "OutcomeKind", "deliver",
           "make_channel"]

"""Parsers: bytes in, raw entries out. No HTTP, no database."""

from .feed import parse_feed

__all__ = ["parse_feed"]

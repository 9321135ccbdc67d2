"""harvester: a scheduled RSS/Atom and HTML-listing harvester and change monitor."""

from .config import Config, load_config
from .errors import ConfigError, FetchError, HarvesterError, NotifyError, ParseError, StoreError
from .harvest import poll_one, poll_sources
from .models import Change, ChangeKind, FetchResult, Item, PollReport, PollStatus, RawEntry
from .store import SqliteStore, Store

__version__ = "0.1.0"

__all__ = [
    "Change", "ChangeKind", "Config", "ConfigError", "FetchError", "FetchResult",
    "HarvesterError", "Item", "NotifyError", "ParseError", "PollReport", "PollStatus",
    "RawEntry", "SqliteStore", "Store", "StoreError", "__version__", "load_config", "poll_one",
    "poll_sources",
]

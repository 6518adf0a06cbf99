"""Dead-letter operations, shared by ``orderflow dlq`` and the dashboard.

- ``DeadLetter``: a DLQ record decoded from its headers; ``DlqFilter``: which ones;
- ``list_dead_letters`` / ``get_dead_letter``: bounded reads from the end of the DLQ;
- ``dlq_stats`` / ``export_jsonl``: read the whole DLQ once;
- ``replay`` / ``replay_edited``: republish, rate-limited, resumable, never altering the DLQ.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Name → submodule. Loaded on first use, so the pure parts (model, filters, rewrite) can be
# imported without pulling in a Kafka client.
_WHERE = {
    "DEFAULT_MAX_SCAN": "browse",
    "dlq_size": "browse",
    "export_jsonl": "browse",
    "get_dead_letter": "browse",
    "iter_dead_letters": "browse",
    "list_dead_letters": "browse",
    "search_dead_letters": "browse",
    "DlqFilter": "filters",
    "REPLAY_LIMIT": "model",
    "DeadLetter": "model",
    "DEFAULT_REPLAY_GROUP": "replay",
    "ReplayReport": "replay",
    "replay": "replay",
    "replay_edited": "replay",
    "ReplayTarget": "rewrite",
    "replay_headers": "rewrite",
    "AGE_BUCKETS": "stats",
    "DlqStats": "stats",
    "dlq_stats": "stats",
    "summarize": "stats",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "AGE_BUCKETS",
    "DEFAULT_MAX_SCAN",
    "DEFAULT_REPLAY_GROUP",
    "REPLAY_LIMIT",
    "DeadLetter",
    "DlqFilter",
    "DlqStats",
    "ReplayReport",
    "ReplayTarget",
    "dlq_size",
    "dlq_stats",
    "export_jsonl",
    "get_dead_letter",
    "iter_dead_letters",
    "list_dead_letters",
    "replay",
    "replay_edited",
    "replay_headers",
    "search_dead_letters",
    "summarize",
]

"""Dead-letter operations, shared by ``orderflow dlq`` and the dashboard.

- ``DeadLetter``: a DLQ record decoded from its headers; ``DlqFilter``: which ones;
- ``list_dead_letters`` / ``get_dead_letter``: bounded reads from the end of the DLQ;
- ``dlq_stats`` / ``export_jsonl``: read the whole DLQ once;
- ``replay`` / ``replay_edited``: republish, rate-limited, resumable, never altering the DLQ.
"""

from processors.dlq.browse import (
    DEFAULT_MAX_SCAN,
    dlq_size,
    export_jsonl,
    get_dead_letter,
    iter_dead_letters,
    list_dead_letters,
    search_dead_letters,
)
from processors.dlq.filters import DlqFilter
from processors.dlq.model import REPLAY_LIMIT, DeadLetter
from processors.dlq.replay import DEFAULT_REPLAY_GROUP, ReplayReport, replay, replay_edited
from processors.dlq.rewrite import ReplayTarget, replay_headers
from processors.dlq.stats import AGE_BUCKETS, DlqStats, dlq_stats, summarize

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

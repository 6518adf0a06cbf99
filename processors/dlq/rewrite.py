"""Pure pieces of a replay: the replayed record's headers and the progress a run commits.

No Kafka, no clock: callers pass ``now_ms``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from processors.core import headers as h
from processors.dlq.model import REPLAY_LIMIT

ReplayTarget = Literal["original", "retry"]


def replay_headers(
    headers: h.RawHeaders,
    *,
    replay_of: str,
    replay_count: int | None,
    now_ms: int,
    target: ReplayTarget,
) -> h.HeaderList:
    """The headers of a replayed record.

    Kept byte for byte, in order, null values and repeated names included: ``ce_*``,
    ``content-type``, ``traceparent``, ``x-original-*`` and any foreign header. Removed: the
    retry state and the last error (every hop header, including ``x-dlq-*`` and the stack
    trace), so the record starts over. Set: ``x-replay-count`` (+1; an unreadable count is
    taken as the limit), ``x-replayed-at`` and ``x-replay-of``. Replayed to the retry topic,
    ``x-attempts`` is set to ``0`` — the retry processor reads a missing counter as "one attempt
    left", ``0`` as a full new budget — and no due time, so it is due now.
    """
    previous = REPLAY_LIMIT if replay_count is None else replay_count
    updates = dict(_HOPS_REMOVED)
    replay: dict[str, object] = {h.ATTEMPTS: 0} if target == "retry" else {}
    replay |= {h.REPLAY_COUNT: previous + 1, h.REPLAYED_AT: now_ms, h.REPLAY_OF: replay_of}
    updates.update(h.encode(replay))
    return h.rewrite(headers, updates)


# Every hop header goes: encoded once (all ``None``), not per replayed record.
_HOPS_REMOVED: dict[str, bytes | None] = h.encode(dict.fromkeys(h.HOP_HEADERS))


# --- the progress of a replay run, stored in its consumer group's commit metadata -----------------
_PREFIX = "orderflow-replay/1"
_FIELD = re.compile(r"(\w+)=(\S*)")


@dataclass(frozen=True)
class RunMark:
    """What a replay run commits with each partition's offset: which run, which selection
    (``fingerprint``), where the partition's part of the run ends, how many records the run
    replayed so far, and whether the run is finished."""

    run_id: str
    fingerprint: str
    end: int
    replayed: int
    done: bool

    def encode(self) -> str:
        return (
            f"{_PREFIX} run={self.run_id} fp={self.fingerprint} end={self.end}"
            f" n={self.replayed} done={int(self.done)}"
        )

    @classmethod
    def decode(cls, text: str | None) -> RunMark | None:
        """``None`` for metadata not written by a replay run (or garbage)."""
        if not text or not text.startswith(_PREFIX + " "):
            return None
        values = dict(_FIELD.findall(text))
        try:
            return cls(
                run_id=values["run"],
                fingerprint=values["fp"],
                end=int(values["end"]),
                replayed=int(values["n"]),
                done=values["done"] == "1",
            )
        except (KeyError, ValueError):
            return None


def fingerprint(*parts: object) -> str:
    """A short stable digest of what selects a run's records (filter, target, limit, …)."""
    text = "\x1f".join(str(part) for part in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

"""The shared bad-input corpus (``bad_inputs.yaml``), as records ready to produce.

``load()`` gives every case with its key, value and headers as bytes and its expected end topic
and ``x-dlq-reason``. ``CASE_HEADER`` is a foreign header the tests add to find each record again
(the processors and replay keep foreign headers byte for byte).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from processors.core import headers as h

CORPUS = Path(__file__).with_name("bad_inputs.yaml")
CASE_HEADER = "x-test-case"

_BASE_ORDER: dict[str, Any] = {
    "schema_version": 1,
    "order_id": "corpus-1",
    "customer_id": "c-1",
    "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "4.50"}],
    "currency": "EUR",
    "total": "9.00",
    "created_at": "2026-01-31T12:00:00Z",
}


@dataclass(frozen=True)
class Case:
    id: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    expect_topic: str  # "dlq" or "processed"
    expect_reason: str | None

    def tagged(self, via: str) -> list[tuple[str, bytes | None]]:
        """The case's headers plus the marker naming it and the way it was sent."""
        return [*self.headers, (CASE_HEADER, f"{self.id}@{via}".encode())]


def _bytes(spec: Any) -> bytes | None:
    if spec is None:
        return None
    if "text" in spec:
        return spec["text"].encode("utf-8")
    if "hex" in spec:
        return bytes.fromhex(spec["hex"])
    if "order" in spec:
        order = _BASE_ORDER | spec["order"]
        return json.dumps({k: v for k, v in order.items() if v is not None}).encode("utf-8")
    if "repeat" in spec:
        times = spec["times"]
        return (
            spec.get("prefix", "")
            + spec["repeat"] * times
            + spec.get("suffix", "")
            + spec.get("close", "") * times
        ).encode("utf-8")
    raise ValueError(f"unknown byte spec {spec!r}")


def _headers(spec: Any) -> tuple[tuple[str, bytes | None], ...]:
    if spec is None:
        return ()
    if isinstance(spec, dict):
        value = _bytes(spec["value"])
        return tuple((name, value) for name in sorted(h.KINDS) if name.startswith(spec["every"]))
    return tuple((str(name), _bytes(value)) for name, value in spec)


@cache
def load() -> tuple[Case, ...]:
    raw = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    cases = []
    for item in raw:
        key_spec = item.get("key", {"text": f"key-{item['id']}"})
        cases.append(
            Case(
                id=item["id"],
                key=_bytes(key_spec),
                value=_bytes(item["value"]),
                headers=_headers(item.get("headers")),
                expect_topic=item["expect"]["topic"],
                expect_reason=item["expect"]["reason"],
            )
        )
    ids = [case.id for case in cases]
    assert len(set(ids)) == len(ids), "case ids must be unique"
    return tuple(cases)

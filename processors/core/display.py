"""Record bytes for people: bounded decoding that never raises.

A dead letter holds exactly the bytes nothing else could read, so every reader that shows one
(the CLI, the dashboard, the export) decodes it here. The work is bounded in size (at most
``PARSE_LIMIT`` bytes are parsed, at most ``SHOW_LIMIT`` characters shown), in depth (JSON
nested deeper than ``DEPTH_LIMIT`` is shown as text) and so in time (one linear pass). What
cannot be shown as JSON is shown as text, or as hex/base64 when it is not UTF-8, with a
one-line ``note`` saying why.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Final, Literal

PARSE_LIMIT: Final = 256 * 1024
SHOW_LIMIT: Final = 64 * 1024
DEPTH_LIMIT: Final = 64
HEX_LIMIT: Final = 64  # binary up to this many bytes as hex, longer as base64

Kind = Literal["json", "text", "hex", "base64", "null", "empty"]


@dataclass(frozen=True, slots=True)
class Shown:
    """A value ready to show: ``text`` (indented JSON, plain text, hex or base64), its ``kind``,
    a one-line ``note`` when it is not shown as sent (``None`` otherwise) and, for JSON, the
    parsed ``document``."""

    text: str
    kind: Kind
    note: str | None = None
    document: Any = None


class _DuplicateKeyError(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKeyError("duplicate keys in a JSON object")
    return result


def _depth(document: Any) -> int:
    """Nesting depth, iteratively (a recursive walk is what this module avoids)."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if deepest > DEPTH_LIMIT:
                return deepest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


def _cut(text: str, note: str | None) -> tuple[str, str | None]:
    if len(text) <= SHOW_LIMIT:
        return text, note
    more = f"showing the first {SHOW_LIMIT:,} of {len(text):,} characters"
    return text[:SHOW_LIMIT] + "…", f"{note}; {more}" if note else more


def parse_json(raw: bytes | None) -> tuple[Any, str | None]:
    """``(document, None)`` when ``raw`` is JSON this module shows as JSON, else
    ``(None, why not)``. Never raises."""
    if raw is None:
        return None, "null value"
    if not raw:
        return None, "empty value"
    if len(raw) > PARSE_LIMIT:
        return None, f"{len(raw):,} bytes, larger than the {PARSE_LIMIT:,} parsed for display"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 ({exc.reason} at byte {exc.start})"
    if text.startswith("\ufeff"):
        return None, "starts with a byte-order mark, which JSON forbids"
    try:
        document = json.loads(text, object_pairs_hook=_pairs)
    except RecursionError:
        return None, f"nested deeper than {DEPTH_LIMIT} levels"
    except _DuplicateKeyError:
        return None, "duplicate keys in a JSON object: shown as sent"
    except ValueError as exc:  # also Python's int-to-str digit limit
        return None, f"not JSON ({str(exc)[:120]})"
    if _depth(document) > DEPTH_LIMIT:
        return None, f"nested deeper than {DEPTH_LIMIT} levels"
    return document, None


def show(raw: bytes | None) -> Shown:
    """``raw`` for display: indented JSON, else text, hex or base64, never an exception."""
    document, why = parse_json(raw)
    if why is None:
        try:
            text = json.dumps(document, indent=2, ensure_ascii=False)
        except ValueError as exc:  # e.g. NaN is fine, but be sure
            why = f"not showable as JSON ({exc})"
        else:
            cut, note = _cut(text, None)
            return Shown(cut, "json", note, document)
    if raw is None:
        return Shown("(null)", "null", "the value is null (a tombstone)")
    if not raw:
        return Shown("(empty)", "empty", "the value is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        if len(raw) <= HEX_LIMIT:
            return Shown(raw.hex(" "), "hex", f"{why}: shown as hex")
        data = raw[: SHOW_LIMIT * 3 // 4]
        shown = base64.b64encode(data).decode("ascii")
        cut = "" if len(data) == len(raw) else f" (first {len(data):,} of {len(raw):,} bytes)"
        return Shown(shown, "base64", f"{why}: shown as base64{cut}")
    cut, note = _cut(text, f"{why}: shown as text")
    return Shown(cut, "text", note)

"""Logging for the processors: one line per decision, ``key=value`` text or JSON.

Use :func:`event` for decisions: ``event(logger, "routed", route="retry", attempt=2)`` renders
``event=routed route=retry attempt=2`` in text mode and ``{"event": "routed", ...}`` in JSON.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


def kv(**fields: Any) -> str:
    """``key=value`` pairs, quoting values that contain spaces, quotes or ``=``."""
    return " ".join(f"{key}={_quote(value)}" for key, value in fields.items() if value is not None)


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one decision. ``None`` fields are left out."""
    if logger.isEnabledFor(level):
        fields = {key: value for key, value in fields.items() if value is not None}
        logger.log(level, kv(event=name, **fields), extra={"fields": {"event": name, **fields}})


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"ts={_timestamp(record)} level={record.levelname.lower()} "
            f"logger={record.name} {record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        else:
            payload["msg"] = record.getMessage()
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def configure(fmt: Literal["text", "json"] = "text", level: str = "INFO") -> None:
    """Route every logger (ours, Quix Streams', librdkafka's) to stderr in one format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Quix Streams logs routine lifecycle at INFO; keep its warnings and errors only.
    logging.getLogger("quixstreams").setLevel(max(logging.WARNING, root.level))

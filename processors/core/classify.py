"""Which failures are worth retrying: one declared table, checked along the ``__cause__`` chain.

Handlers signal failure by raising. ``TransientError`` means "try again later",
``PermanentError`` means "this record will never succeed". Other exception types can be
declared transient or permanent in the settings; anything undeclared is ``unknown`` and, by
default, retried (an outage of a dependency must not empty the topic into the DLQ).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from processors.errors import InvalidOrderError


class TransientError(Exception):
    """Raise from a handler when the same record may succeed later (timeouts, 503s, locks)."""


class PermanentError(Exception):
    """Raise from a handler when the record can never succeed (declined card, unknown SKU)."""


class ErrorCategory(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    VALIDATION = "validation"
    DESERIALIZATION = "deserialization"
    UNKNOWN = "unknown"


# Built-in rows, checked after the configured ones. Order matters only between a class and its
# subclasses; the first matching row wins.
BUILTIN_RULES: tuple[tuple[type[BaseException], ErrorCategory], ...] = (
    (PermanentError, ErrorCategory.PERMANENT),
    (TransientError, ErrorCategory.TRANSIENT),
    (InvalidOrderError, ErrorCategory.VALIDATION),
    (ValidationError, ErrorCategory.VALIDATION),
)

# Causes followed at most this deep: a cycle or a pathological chain cannot hang the processor.
_MAX_CHAIN = 16


@dataclass(frozen=True)
class Classifier:
    """The declared table. Build it once with :func:`build_classifier`."""

    rules: tuple[tuple[type[BaseException], ErrorCategory], ...] = BUILTIN_RULES

    def classify(self, exc: BaseException) -> ErrorCategory:
        """The category of the first exception along ``exc → exc.__cause__ → …`` that matches a
        row; ``UNKNOWN`` when none does. A wrapper of an unknown type therefore defers to a
        declared cause (``raise RuntimeError(...) from TransientError(...)`` is transient)."""
        for link in cause_chain(exc):
            for cls, category in self.rules:
                if isinstance(link, cls):
                    return category
        return ErrorCategory.UNKNOWN


DEFAULT_CLASSIFIER = Classifier()


def classify(exc: BaseException, classifier: Classifier = DEFAULT_CLASSIFIER) -> ErrorCategory:
    return classifier.classify(exc)


def cause_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` then each explicit ``__cause__``, without repeats."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(link))
        yield link
        link = link.__cause__


def qualified_name(exc: BaseException) -> str:
    """``module.QualName`` of the exception's class, as ``x-error-class`` carries it."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def resolve_class(spec: str) -> type[BaseException]:
    """Import ``package.module.ClassName`` (or ``package.module:ClassName``).

    Raises ``ValueError`` with a one-line reason when the name does not resolve to an exception
    class: a typo in the settings fails at start-up instead of silently never matching.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep:
        module_name, _, attribute = spec.rpartition(".")
        if not module_name:
            module_name = "builtins"
    try:
        target: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot import exception class {spec!r}: {exc}") from None
    if not (isinstance(target, type) and issubclass(target, BaseException)):
        raise ValueError(f"{spec!r} is not an exception class")
    return target


def build_classifier(permanent: Iterable[str] = (), transient: Iterable[str] = ()) -> Classifier:
    """The table: configured permanent classes, configured transient classes, then the built-in
    rows. Raises ``ValueError`` for a name that does not import or is listed in both."""
    permanent, transient = list(permanent), list(transient)
    both = set(permanent) & set(transient)
    if both:
        raise ValueError(f"listed as both permanent and transient: {sorted(both)}")
    rows = [(resolve_class(name), ErrorCategory.PERMANENT) for name in permanent]
    rows += [(resolve_class(name), ErrorCategory.TRANSIENT) for name in transient]
    return Classifier(rules=(*rows, *BUILTIN_RULES))

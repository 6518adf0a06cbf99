from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

from processors import PermanentError, TransientError
from processors.core.classify import (
    Classifier,
    ErrorCategory,
    build_classifier,
    cause_chain,
    classify,
    qualified_name,
    resolve_class,
)
from processors.errors import InvalidOrderError


class Timeout(TransientError):
    pass


class Declined(PermanentError):
    pass


class _Model(BaseModel):
    x: int


def _pydantic_error() -> ValidationError:
    try:
        _Model(x="no")  # type: ignore[arg-type]
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


def _chained(outer: Exception, cause: BaseException) -> Exception:
    outer.__cause__ = cause
    return outer


CASES = [
    ("transient", TransientError("x"), ErrorCategory.TRANSIENT),
    ("transient subclass", Timeout("x"), ErrorCategory.TRANSIENT),
    ("permanent", PermanentError("x"), ErrorCategory.PERMANENT),
    ("permanent subclass", Declined("x"), ErrorCategory.PERMANENT),
    ("invalid order", InvalidOrderError("x"), ErrorCategory.VALIDATION),
    ("pydantic", _pydantic_error(), ErrorCategory.VALIDATION),
    ("unknown", RuntimeError("x"), ErrorCategory.UNKNOWN),
    ("unknown wraps transient", _chained(RuntimeError("x"), Timeout()), ErrorCategory.TRANSIENT),
    ("unknown wraps permanent", _chained(KeyError("x"), Declined()), ErrorCategory.PERMANENT),
    ("outer wins", _chained(PermanentError(), TransientError()), ErrorCategory.PERMANENT),
    ("deep cause", _chained(ValueError(), _chained(OSError(), Timeout())), ErrorCategory.TRANSIENT),
]


@pytest.mark.parametrize(("name", "exc", "expected"), CASES, ids=[c[0] for c in CASES])
def test_default_table(name: str, exc: BaseException, expected: ErrorCategory) -> None:
    assert classify(exc) is expected


def test_implicit_context_is_not_followed() -> None:
    try:
        try:
            raise TransientError("inner")
        except TransientError:
            raise RuntimeError("outer") from None
    except RuntimeError as exc:
        assert classify(exc) is ErrorCategory.UNKNOWN


def test_cause_cycle_terminates() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert classify(a) is ErrorCategory.UNKNOWN
    assert len(list(cause_chain(a))) == 2


def test_configured_classes_take_precedence() -> None:
    classifier = build_classifier(
        permanent=["json.JSONDecodeError"], transient=["builtins.ConnectionError", "KeyError"]
    )
    assert classifier.classify(json.JSONDecodeError("m", "d", 0)) is ErrorCategory.PERMANENT
    assert classifier.classify(ConnectionResetError()) is ErrorCategory.TRANSIENT
    assert classifier.classify(KeyError("k")) is ErrorCategory.TRANSIENT
    # configured permanent beats the built-in transient row of a subclass
    both = build_classifier(permanent=["tests.core.test_classify:Timeout"])
    assert both.classify(Timeout()) is ErrorCategory.PERMANENT
    assert both.classify(TransientError()) is ErrorCategory.TRANSIENT


@pytest.mark.parametrize(
    "spec", ["no.such.module.Error", "json.NoSuchError", "json.dumps", "Nope", "json:"]
)
def test_bad_class_names_fail_at_build_time(spec: str) -> None:
    with pytest.raises(ValueError):
        build_classifier(permanent=[spec])


def test_same_class_in_both_lists_is_rejected() -> None:
    with pytest.raises(ValueError, match="both"):
        build_classifier(permanent=["KeyError"], transient=["KeyError"])


def test_resolve_class_forms() -> None:
    assert resolve_class("KeyError") is KeyError
    assert resolve_class("json.JSONDecodeError") is json.JSONDecodeError
    assert resolve_class("json:JSONDecodeError") is json.JSONDecodeError


def test_qualified_name() -> None:
    assert qualified_name(KeyError()) == "KeyError"
    assert qualified_name(Timeout()) == "tests.core.test_classify.Timeout"
    assert qualified_name(json.JSONDecodeError("m", "d", 0)) == "json.decoder.JSONDecodeError"


def test_classifier_is_frozen() -> None:
    with pytest.raises(AttributeError):
        Classifier().rules = ()  # type: ignore[misc]

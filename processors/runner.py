"""The run scaffold both processors share: logging, metrics, the watchdog, in-process recovery,
exit codes.

A processor is a factory of *sessions*: one session owns one set of Kafka clients (a consumer and
a transactional producer) and runs until asked to stop or until a Kafka call fails. A failure
that a new set of clients fixes — the producer fenced by its own transaction's recovery after a
coordinator failover or a transaction timeout, a transaction that could not commit within its
budget, a broker that stayed away — does not end the process: the session is thrown away and a
new one is built with the same ``transactional.id`` (its ``init_transactions`` fences the old
epoch and aborts what was open) and the same static group member id (it gets the same partitions
back and resumes from the committed offsets), the way Kafka Streams handles a migrated task.
Only when that happens more than ``recovery_limit`` times within ``RECOVERY_WINDOW_S`` does the
process exit — with code 4 when it keeps being fenced (another live instance with the same
instance id), else 1.

A Kafka call that runs out of its time budget is another matter: its broker is away or hung, and
librdkafka's own recovery is what failed, so the process ends (``event=stalled``, exit 3) and
its supervisor restarts it; the new instance fences the old transaction at once.

Exit codes: 0 clean stop; 1 error; 2 bad settings; 3 stalled (a Kafka call or the loop did not
finish within its bound, or a shutdown did not); 4 fenced again and again; 128 + N a second
signal N (130 SIGINT, 143 SIGTERM).
"""

from __future__ import annotations

import faulthandler
import gc
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException

from processors.errors import FencedError, OrderflowError, ProcessorError, StalledError
from processors.kafka.bounded import GRACE_S, TIMEOUT_CODES
from processors.liveness import Watchdog
from processors.logs import event
from processors.metrics import Metrics, serve
from processors.runtime import raise_if_denied
from processors.settings import Settings, load_settings

logger = logging.getLogger(__name__)

RECOVERY_WINDOW_S = 120.0
# Building a session's clients includes Quix Streams' topic checks (30 s request timeouts).
CONNECT_S = 60.0
MAX_RECOVERY_BACKOFF_S = 8.0

_FENCED_CODES = {
    KafkaError._FENCED,  # librdkafka's local code for a fenced producer
    KafkaError.PRODUCER_FENCED,
    KafkaError.INVALID_PRODUCER_EPOCH,
    KafkaError.FENCED_INSTANCE_ID,
}
# Quix Streams' errors that wrap a failed Kafka operation (module, class name).
_QUIX_TIMEOUTS = {"CheckpointProducerTimeout", "KafkaProducerTransactionCommitFailed"}
_QUIX_KAFKA_ERRORS = _QUIX_TIMEOUTS | {
    "KafkaProducerDeliveryError",
    "KafkaConsumerException",
    "CheckpointConsumerCommitError",
    "CheckpointProducerTimeout",
    "KafkaProducerTransactionAlreadyActive",
    "KafkaBrokerUnavailableError",
}


class Session(Protocol):
    """One life of a processor's Kafka clients."""

    def run(self) -> None:
        """Process until :meth:`stop` (return) or a failure (raise)."""

    def stop(self) -> None:
        """Ask :meth:`run` to return soon (callable from any thread)."""

    def work_waiting(self) -> bool:
        """Records are processed but not committed, or due but not processed."""

    def lagging(self) -> dict[tuple[str, int], int]:
        """Assigned partitions with records beyond the position: ``{(topic, p): position}``."""


SessionFactory = Callable[[Watchdog], Session]


def failure_cause(exc: BaseException) -> str | None:
    """Why a session failed, looking at the exception and everything it was raised from or
    during: ``"timeout"`` (a Kafka call ran out of time: exit and let the supervisor restart),
    ``"fenced"`` (new clients fix it), ``"kafka"`` (another Kafka error: new clients may fix
    it), or ``None`` (not Kafka: a bug, exit)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    kafka = fenced = timeout = False
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        error = current.args[0] if current.args else None
        if isinstance(current, KafkaException) or isinstance(error, KafkaError):
            kafka = True
            code = error.code() if isinstance(error, KafkaError) else None
            fenced |= code in _FENCED_CODES
            timeout |= code in TIMEOUT_CODES
        if type(current).__module__.startswith("quixstreams"):
            kafka |= type(current).__name__ in _QUIX_KAFKA_ERRORS
            timeout |= type(current).__name__ in _QUIX_TIMEOUTS
        fenced |= "fenced" in str(current).lower()
        current = current.__cause__ or current.__context__
    if not kafka:
        return None
    # A call that ran out of time first and then reported a fence (an abort after the timeout)
    # is a broker away: exit and let a restart fence what was open.
    return "timeout" if timeout else "fenced" if fenced else "kafka"


def run_processor(
    processor: str, settings: Settings, metrics: Metrics, new_session: SessionFactory
) -> None:
    """Run sessions until a clean stop; raise ``ProcessorError`` (exit 1/4) on a failure that
    recovery does not fix. The watchdog may end the process itself (exit 3, 128 + N)."""
    watchdog = Watchdog(
        processor,
        loop_timeout_s=settings.watchdog_timeout_s,
        shutdown_timeout_s=settings.shutdown_timeout_s,
        progress_gauge=metrics.last_progress,
    )
    serve(metrics, settings.metrics_port, settings.metrics_host)
    # `kill -USR1 <pid>` prints every thread's stack to stderr, even with the GIL held.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    watchdog.start()
    recoveries: deque[float] = deque()
    first = True
    exit_code, message = 0, None
    try:
        while not watchdog.stopping:
            try:
                with watchdog.call(
                    "connect", max(settings.kafka_call_budget_s, CONNECT_S) + GRACE_S
                ):
                    session = new_session(watchdog)
            except Exception as exc:
                if first:  # bad topics, no broker at start: one line, exit 1
                    raise
                backoff = _recover_or_raise(
                    processor, settings, metrics, exc, failure_cause(exc), recoveries, watchdog
                )
                _sleep(backoff, watchdog)
                continue
            first = False
            # What exists now (modules, schemas, the clients) lives as long as the session: a
            # full collection would walk all of it again and again, a pause of ~0.1 s each.
            gc.freeze()
            watchdog.timed_out = None
            watchdog.work_waiting = session.work_waiting
            watchdog.fetch_stalls.clear()
            watchdog.lagging = session.lagging
            watchdog.on_stop = session.stop
            if watchdog.stopping:  # the signal came while the clients were being built
                session.stop()
            failed: Exception | None = None
            try:
                session.run()
                break
            except Exception as exc:
                # A bounded call that ran out of time and then failed (however Quix wraps it:
                # an abort after it may report a fence) is a broker away: exit.
                cause = "timeout" if watchdog.timed_out else failure_cause(exc)
                backoff = _recover_or_raise(
                    processor, settings, metrics, exc, cause, recoveries, watchdog
                )
                failed = exc  # keeps the old clients alive until the bounded teardown below
            finally:
                watchdog.on_stop = lambda: None
                watchdog.work_waiting = lambda: False
                watchdog.lagging = dict
            with watchdog.call("teardown", max(settings.kafka_call_budget_s, CONNECT_S) + GRACE_S):
                del failed, session  # librdkafka destroys the old clients here
                gc.unfreeze()  # the old session's cycles become collectable again
                gc.collect()
            _sleep(backoff, watchdog)
    except OrderflowError as exc:
        if first:
            raise
        exit_code, message = exc.exit_code, f"orderflow: error: {exc}"
    finally:
        watchdog.close()
        event(logger, "stopped", processor=processor)
    # Clients exist whose destruction could block on a broker that is away: end now.
    _exit_now(exit_code, message)


def _exit_now(code: int, message: str | None = None) -> None:
    """Exit without finalizing the interpreter (whose garbage collection of librdkafka
    handles can wait on a broker that is gone), after flushing what was logged."""
    if message:
        print(message, file=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _sleep(seconds: float, watchdog: Watchdog) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not watchdog.stopping:
        watchdog.beat()
        time.sleep(0.1)


def _recover_or_raise(
    processor: str,
    settings: Settings,
    metrics: Metrics,
    exc: Exception,
    cause: str | None,
    recoveries: deque[float],
    watchdog: Watchdog,
) -> float:
    """Raise ``ProcessorError`` (exit) or return the backoff before new clients."""
    error = f"{type(exc).__name__}: {exc}"
    raise_if_denied(settings, processor, exc)  # type: ignore[arg-type]  # an ACL: one line, no retry
    if cause is None:
        event(logger, "crashed", logging.ERROR, processor=processor, error=type(exc).__name__)
        if isinstance(exc, ProcessorError):
            raise exc
        raise ProcessorError(f"{processor} processor stopped: {error}") from exc
    if cause == "timeout":
        call, waited = watchdog.timed_out or (type(exc).__name__, 0.0)
        event(
            logger,
            "stalled",
            logging.ERROR,
            processor=processor,
            call=call,
            waited_s=round(waited, 1),
            exit_code=StalledError.exit_code,
        )
        raise StalledError(f"{processor} processor: {call} did not finish: {error}") from None
    if watchdog.stopping:
        return 0.0  # asked to stop: a failure while closing ends the process, cleanly
    now = time.monotonic()
    recoveries.append(now)
    while recoveries and now - recoveries[0] > RECOVERY_WINDOW_S:
        recoveries.popleft()
    if len(recoveries) > settings.recovery_limit:
        event(logger, "crashed", logging.ERROR, processor=processor, cause=cause, error=error)
        window = f"{len(recoveries)} times in {RECOVERY_WINDOW_S:.0f} s"
        if cause == "fenced":
            raise FencedError(
                f"{processor} processor fenced {window}: is another instance running with "
                f"the same instance id? ({error})"
            ) from None
        raise ProcessorError(f"{processor} processor failed {window}: {error}") from None
    backoff = min(0.5 * 2 ** (len(recoveries) - 1), MAX_RECOVERY_BACKOFF_S)
    metrics.recovered(cause)
    event(
        logger,
        "recovering",
        logging.WARNING,
        processor=processor,
        cause=cause,
        attempt=len(recoveries),
        backoff_s=backoff,
        error=error,
    )
    return backoff


def standalone(run: Callable[[Settings], None]) -> None:
    """Entry point of ``python -m processors.main|retry``: settings from the environment only;
    an ``OrderflowError`` becomes one line on stderr and its exit code."""
    from processors import logs
    from processors.kafka.access import check_access

    try:
        settings = load_settings()
        logs.configure(settings.log_format, settings.log_level)
        check_access(settings)  # wrong credentials: one line and exit, never a restart loop
        run(settings)
    except OrderflowError as exc:
        print(f"orderflow: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)

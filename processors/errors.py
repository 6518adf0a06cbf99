"""orderflow's errors. The CLI turns an ``OrderflowError`` into one line and an exit code."""

from __future__ import annotations


class OrderflowError(Exception):
    """Root of every error orderflow raises on purpose."""

    exit_code = 1


class SettingsError(OrderflowError):
    """A setting is missing, malformed or contradicts another one."""

    exit_code = 2


class KafkaUnavailableError(OrderflowError):
    """The brokers could not be reached or refused a request."""


class TopicDriftError(OrderflowError):
    """A topic exists with partitions or configuration other than the ones we expect."""


class LocalKafkaError(OrderflowError):
    """The local broker (jar or Docker) could not be fetched, started, stopped or inspected."""


class InvalidOrderError(OrderflowError):
    """An order failed validation. ``str()`` lists every failing field."""

    exit_code = 2


class ProcessorError(OrderflowError):
    """A processor stopped on an error it cannot recover from (e.g. a fenced or fatal
    transaction); a restart resumes from the committed offsets."""


class FencedError(ProcessorError):
    """Fenced again and again: another live instance uses the same instance id."""

    exit_code = 4


class StalledError(ProcessorError):
    """A Kafka call did not finish within its budget: a restart (new connections) is the cure."""

    exit_code = 3


class AuthenticationError(KafkaUnavailableError):
    """Kafka did not accept the client's identity: wrong or missing credentials, an untrusted
    certificate, or a protocol the listener does not speak. The message names the user."""

    exit_code = 5


class AuthorizationError(OrderflowError):
    """Kafka refused an operation to an authenticated principal (an ACL denial). The message
    names the principal, the operation and the resource."""

    exit_code = 6

"""Applying ``processors.acls`` grants to a broker with the Admin API (needs a super user)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from processors.acls import Grant
from processors.errors import KafkaUnavailableError
from processors.kafka.clients import admin_client
from processors.settings import Settings

log = logging.getLogger(__name__)


def binding(grant: Grant) -> AclBinding:
    return AclBinding(
        ResourceType[grant.resource_type],
        grant.name,
        ResourcePatternType[grant.pattern],
        grant.principal,
        "*",
        AclOperation[grant.operation],
        AclPermissionType.ALLOW,
    )


def _exact_filter(acl: AclBinding) -> AclBindingFilter:
    return AclBindingFilter(
        acl.restype, acl.name, acl.resource_pattern_type, acl.principal, acl.host,
        acl.operation, acl.permission_type,
    )  # fmt: skip


def grant_of(acl: AclBinding) -> Grant:
    return Grant(
        acl.principal,
        acl.restype.name,  # type: ignore[arg-type]
        acl.name,
        acl.resource_pattern_type.name,  # type: ignore[arg-type]
        acl.operation.name,
    )


def apply_grants(
    settings: Settings, wanted: Iterable[Grant], *, timeout_s: float = 30.0
) -> tuple[int, int]:
    """Make the ACLs of the principals in ``wanted`` exactly ``wanted``: create the missing ones,
    delete the others of those principals (e.g. after a topic was renamed).

    ``settings`` must authenticate a super user. Returns ``(created, deleted)``.
    """
    wanted = set(wanted)
    admin = admin_client(settings)
    principals = {grant.principal for grant in wanted}
    try:
        everything = AclBindingFilter(
            ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
            AclOperation.ANY, AclPermissionType.ANY,
        )  # fmt: skip
        existing = admin.describe_acls(everything, request_timeout=timeout_s).result(timeout_s)
        have = {grant_of(acl): acl for acl in existing if acl.principal in principals}
        missing = [binding(grant) for grant in sorted(wanted - set(have))]
        extra = [_exact_filter(have[grant]) for grant in sorted(set(have) - wanted)]
        for future in (
            admin.create_acls(missing, request_timeout=timeout_s).values() if missing else []
        ):
            future.result(timeout_s)
        if extra:
            for future in admin.delete_acls(extra, request_timeout=timeout_s).values():
                future.result(timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"cannot set ACLs on {settings.bootstrap_servers}: {exc.args[0].str()}"
        ) from None
    log.info(
        "acls created=%d deleted=%d principals=%s", len(missing), len(extra), sorted(principals)
    )
    return len(missing), len(extra)

"""Instance identity: one EC2-only role per host class, each with the SSM core policy and the
session policy; a key pair only if one was given."""

from __future__ import annotations

import json

import pytest

INSTANCE = "aws:ec2/instance:Instance"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample me@laptop"


CLASSES = ("kafka", "app", "ui")


def test_each_role_is_assumable_by_ec2_only_and_has_the_ssm_core_policy(deploy) -> None:
    d = deploy()
    roles = {r.name: r for r in d.of_type("aws:iam/role:Role")}
    assert set(roles) == {f"orderflow-{c}" for c in CLASSES} | {"orderflow-flow-logs"}
    attachments = {
        a.name: a for a in d.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    profiles = {p.name: p for p in d.of_type("aws:iam/instanceProfile:InstanceProfile")}
    assert set(profiles) == {f"orderflow-{c}" for c in CLASSES}
    for host_class in CLASSES:
        role = roles[f"orderflow-{host_class}"]
        policy = json.loads(role.inputs["assumeRolePolicy"])
        assert [s["Principal"] for s in policy["Statement"]] == [{"Service": "ec2.amazonaws.com"}]
        attachment = attachments[f"orderflow-{host_class}-ssm"]
        assert attachment.inputs["policyArn"] == (
            "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
        )
        assert attachment.inputs["role"] == role.state["name"]
        assert profiles[f"orderflow-{host_class}"].inputs["role"] == role.state["name"]
    assert len(attachments) == len(CLASSES)


def test_no_key_pair_unless_configured(deploy) -> None:
    assert deploy().count("aws:ec2/keyPair:KeyPair") == 0
    d = deploy(sshPublicKey=KEY)
    (pair,) = d.of_type("aws:ec2/keyPair:KeyPair")
    assert pair.inputs["publicKey"] == KEY
    assert {i.inputs["keyName"] for i in d.of_type(INSTANCE)} == {pair.state["keyName"]}


def test_session_manager_preferences_log_to_cloudwatch_encrypted_with_the_stacks_key(
    deploy,
) -> None:
    d = deploy()
    (document,) = d.of_type("aws:ssm/document:Document")
    assert document.inputs["documentType"] == "Session"
    assert document.inputs["name"] == "orderflow-test-sessions"
    content = json.loads(document.inputs["content"])
    assert content["sessionType"] == "Standard_Stream"
    settings = content["inputs"]
    key = d.named("aws:kms/key:Key", "orderflow-sessions")
    logs = d.named("aws:cloudwatch/logGroup:LogGroup", "orderflow-sessions")
    assert settings["kmsKeyId"] == key.state["keyId"]
    assert settings["cloudWatchLogGroupName"] == logs.state["name"]
    assert settings["cloudWatchEncryptionEnabled"] is True
    assert settings["runAsEnabled"] is False
    assert key.inputs["enableKeyRotation"] is True
    assert logs.inputs["kmsKeyId"] == key.state["arn"]
    assert logs.inputs["retentionInDays"] == 365
    statements = json.loads(key.inputs["policy"])["Statement"]
    assert {s["Sid"]: s["Principal"] for s in statements} == {
        "AccountAdministers": {"AWS": "arn:aws:iam::123456789012:root"},
        "CloudWatchLogsEncrypts": {"Service": "logs.eu-central-1.amazonaws.com"},
    }
    # Every shell command in the outputs uses these preferences.
    assert all(
        c.endswith("--document-name orderflow-test-sessions")
        for c in d.outputs["ssm_commands"]["sessions"].values()
    )


@pytest.mark.parametrize("host_class", CLASSES)
def test_hosts_may_use_the_session_key_and_write_only_to_the_session_logs(
    deploy, host_class
) -> None:
    d = deploy()
    key = d.named("aws:kms/key:Key", "orderflow-sessions")
    logs = d.named("aws:cloudwatch/logGroup:LogGroup", "orderflow-sessions")
    policy = d.named("aws:iam/rolePolicy:RolePolicy", f"orderflow-{host_class}-sessions")
    assert policy.inputs["role"] == d.named("aws:iam/role:Role", f"orderflow-{host_class}").id
    statements = json.loads(policy.inputs["policy"])["Statement"]
    by_resource = {json.dumps(s["Resource"]): set(s["Action"]) for s in statements}
    assert by_resource[json.dumps(key.state["arn"])] == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert by_resource[json.dumps(logs.state["arn"] + ":*")] == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    assert by_resource['"*"'] == {"logs:DescribeLogGroups", "logs:DescribeLogStreams"}

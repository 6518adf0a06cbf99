"""Instance identity: SSM core policy on an EC2-only role; a key pair only if one was given."""

from __future__ import annotations

import json

INSTANCE = "aws:ec2/instance:Instance"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample me@laptop"


def test_role_is_assumable_by_ec2_only_and_has_the_ssm_core_policy(deploy) -> None:
    d = deploy()
    role = d.named("aws:iam/role:Role", "orderflow")
    policy = json.loads(role.inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in policy["Statement"]] == [{"Service": "ec2.amazonaws.com"}]
    (attachment,) = d.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment.inputs["policyArn"] == (
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
    )
    assert attachment.inputs["role"] == role.state["name"]
    (profile,) = d.of_type("aws:iam/instanceProfile:InstanceProfile")
    assert profile.inputs["role"] == role.state["name"]


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
    (key,) = d.of_type("aws:kms/key:Key")
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


def test_hosts_may_use_the_session_key_and_write_only_to_the_session_logs(deploy) -> None:
    d = deploy()
    (key,) = d.of_type("aws:kms/key:Key")
    logs = d.named("aws:cloudwatch/logGroup:LogGroup", "orderflow-sessions")
    policy = d.named("aws:iam/rolePolicy:RolePolicy", "orderflow-sessions")
    assert policy.inputs["role"] == d.named("aws:iam/role:Role", "orderflow").id
    statements = json.loads(policy.inputs["policy"])["Statement"]
    by_resource = {json.dumps(s["Resource"]): set(s["Action"]) for s in statements}
    assert by_resource[json.dumps(key.state["arn"])] == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert by_resource[json.dumps(logs.state["arn"] + ":*")] == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    assert by_resource['"*"'] == {"logs:DescribeLogGroups", "logs:DescribeLogStreams"}

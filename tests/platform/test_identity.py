"""Instance identity: SSM core policy on an EC2-only role; a key pair only if one was given."""

from __future__ import annotations

import json

INSTANCE = "aws:ec2/instance:Instance"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample me@laptop"


def test_role_is_assumable_by_ec2_only_and_has_the_ssm_core_policy(deploy) -> None:
    d = deploy()
    (role,) = d.of_type("aws:iam/role:Role")
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

"""Pulumi mocks for the platform/ program: no CLI, no plugins, no cloud.

``platform/`` is put on sys.path so ``orderflow_infra`` imports the way the Pulumi runtime
imports it; ``platform`` itself is never imported as a package (it would shadow the stdlib).
Mocks are process-global, so they are set once here; nothing else in the suite uses Pulumi.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import itertools
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
from google.protobuf import json_format
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key
from pulumi.runtime.sync_await import _ensure_event_loop

PLATFORM_DIR = Path(__file__).resolve().parents[2] / "platform"
if str(PLATFORM_DIR) not in sys.path:
    sys.path.insert(0, str(PLATFORM_DIR))

from orderflow_infra.config import StackConfig, parse_config  # noqa: E402
from orderflow_infra.program import build  # noqa: E402

MOCK_ACCOUNT = "123456789012"
_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def fake_random(name: str, length: int, alphabet: str = _ALPHANUMERIC) -> str:
    """What a provider would generate, but stable per resource name: a toggle diff must not
    see a new password where the real provider keeps the old one."""
    digest = hashlib.sha256(f"mock:{name}".encode()).digest() * (length // 32 + 1)
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


def fake_pem(label: str, name: str) -> str:
    return f"-----BEGIN {label}-----\n{fake_random(name + label, 64)}\n-----END {label}-----\n"


@dataclass
class Recorded:
    """One resource the program registered: Pulumi type token, logical name, inputs, state."""

    typ: str
    name: str
    inputs: dict[str, Any]
    id: str
    state: dict[str, Any]


class AwsMocks(pulumi.runtime.Mocks):
    """Answers like AWS would: subnet AZs flow to instances, instances get private IPs from
    their subnet, and a public IP only when they ask for one (AWS reports none as "")."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.resources: list[Recorded] = []
        self.calls: list[pulumi.runtime.MockCallArgs] = []
        self._ids = itertools.count(1)
        self._subnets: dict[str, dict[str, Any]] = {}
        self._interfaces: dict[str, dict[str, Any]] = {}
        self._host_numbers: dict[str, itertools.count] = {}
        self.region = "eu-central-1"
        # (instance type, AZ) pairs EC2 offers; None: every type in every zone.
        self.offerings: list[tuple[str, str]] | None = None
        self.zones = "abc"  # AZ suffixes the region reports as opt-in-free
        self.generated: list[str] = []  # every secret value a provider "generated"

    def _address(self, subnet_id: str) -> str:
        network = ipaddress.ip_network(self._subnets[subnet_id]["cidrBlock"])
        counter = self._host_numbers.setdefault(subnet_id, itertools.count(11))
        return str(network.network_address + next(counter))

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        n = next(self._ids)
        inputs = dict(args.inputs)
        state = dict(inputs)
        short = args.typ.rsplit(":", 1)[-1]
        rid = f"{short.lower()}-{n:05d}"
        if args.typ == "pulumi:providers:aws":
            self.region = inputs.get("region", self.region)
        elif args.typ == "aws:ec2/subnet:Subnet":
            rid = f"subnet-{n:05d}"
            self._subnets[rid] = inputs
        elif args.typ == "aws:ec2/networkInterface:NetworkInterface":
            rid = f"eni-0{n:016x}"
            state["privateIp"] = self._address(inputs["subnetId"])
            self._interfaces[rid] = state
        elif args.typ == "aws:ec2/instance:Instance":
            rid = f"i-0{n:016x}"
            if "primaryNetworkInterface" in inputs:
                interface = self._interfaces[
                    inputs["primaryNetworkInterface"]["networkInterfaceId"]
                ]
                subnet_id = interface["subnetId"]
                state["privateIp"] = interface["privateIp"]
            else:
                subnet_id = inputs["subnetId"]
                state["privateIp"] = self._address(subnet_id)
            state["subnetId"] = subnet_id
            state["availabilityZone"] = self._subnets[subnet_id]["availabilityZone"]
            state["publicIp"] = (
                f"198.51.100.{n % 250}" if inputs.get("associatePublicIpAddress") else ""
            )
        elif args.typ == "aws:ec2/eip:Eip":
            rid = f"eipalloc-0{n:016x}"
            state["publicIp"] = f"203.0.113.{n % 250}"
        elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
            state["name"] = args.name
            state["arn"] = f"arn:aws:logs:{self.region}:{MOCK_ACCOUNT}:log-group:{args.name}"
        elif args.typ == "aws:kms/key:Key":
            state["keyId"] = f"key-{n:05d}"
            state["arn"] = f"arn:aws:kms:{self.region}:{MOCK_ACCOUNT}:key/key-{n:05d}"
        elif args.typ == "aws:lb/loadBalancer:LoadBalancer":
            state["dnsName"] = f"{args.name}-{n}.{self.region}.elb.amazonaws.com"
            state["arn"] = f"arn:aws:elasticloadbalancing:{self.region}:{MOCK_ACCOUNT}:lb/{n}"
        elif args.typ == "aws:ebs/volume:Volume":
            rid = f"vol-0{n:016x}"
        elif args.typ == "aws:ec2/securityGroup:SecurityGroup":
            rid = f"sg-0{n:016x}"
        elif args.typ == "aws:ec2/vpc:Vpc":
            rid = f"vpc-0{n:016x}"
        elif args.typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{MOCK_ACCOUNT}:role/{args.name}"
            state["name"] = args.name
        elif args.typ == "aws:iam/instanceProfile:InstanceProfile":
            state["name"] = args.name
        elif args.typ == "aws:ec2/keyPair:KeyPair":
            state["keyName"] = args.name
        elif args.typ == "random:index/randomPassword:RandomPassword":
            alphabet = _ALPHANUMERIC + (inputs.get("overrideSpecial") or "")
            state["result"] = fake_random(args.name, int(inputs["length"]), alphabet)
            state["bcryptHash"] = "$2a$10$" + fake_random(args.name + "bcrypt", 53)
            self.generated.append(state["result"])
        elif args.typ == "tls:index/privateKey:PrivateKey":
            state["privateKeyPem"] = fake_pem("EC PRIVATE KEY", args.name)
            state["privateKeyPemPkcs8"] = fake_pem("PRIVATE KEY", args.name)
            state["publicKeyPem"] = fake_pem("PUBLIC KEY", args.name)
            self.generated += [state["privateKeyPem"], state["privateKeyPemPkcs8"]]
        elif args.typ == "tls:index/selfSignedCert:SelfSignedCert":
            state["certPem"] = fake_pem("CERTIFICATE", args.name)
        elif args.typ == "aws:secretsmanager/secret:Secret":
            suffix = fake_random(args.name, 6)  # AWS appends 6 random characters
            state["arn"] = (
                f"arn:aws:secretsmanager:{self.region}:{MOCK_ACCOUNT}:secret:"
                f"{inputs['name']}-{suffix}"
            )
            rid = state["arn"]  # a secret's id is its ARN
        self.resources.append(Recorded(args.typ, args.name, inputs, rid, state))
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        self.calls.append(args)
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zones = [f"{self.region}{z}" for z in self.zones]
            return {"id": self.region, "names": zones, "zoneIds": zones, "state": "available"}
        if args.token == "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
            (wanted,) = [f["values"] for f in args.args["filters"] if f["name"] == "instance-type"]
            zones = [f"{self.region}{z[-1]}" for z in "abcdef"]
            pairs = self.offerings or [(t, z) for t in wanted for z in zones]
            pairs = [(t, z) for t, z in pairs if t in wanted]
            return {
                "id": self.region,
                "instanceTypes": [t for t, _ in pairs],
                "locations": [z for _, z in pairs],
                "locationTypes": ["availability-zone"] * len(pairs),
            }
        if args.token == "aws:ssm/getParameter:getParameter":
            arch = args.args["name"].split("/")[-4]
            ami = {"amd64": "ami-0123456789abcdef0", "arm64": "ami-0fedcba9876543210"}[arch]
            return {
                "id": args.args["name"],
                "name": args.args["name"],
                "type": "String",
                "value": ami,
                "insecureValue": ami,
            }
        if args.token == "aws:index/getPartition:getPartition":
            return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com"}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"id": MOCK_ACCOUNT, "accountId": MOCK_ACCOUNT, "arn": "arn", "userId": "u"}
        raise AssertionError(f"unexpected invoke {args.token}")


class RecordingMonitor(MockMonitor):
    """Also records each registration's parent URN, ignore_changes and its inputs as sent on
    the wire, secrets still wrapped (MockResourceArgs carries none of them)."""

    def __init__(self, mocks: AwsMocks) -> None:
        super().__init__(mocks)
        self.parents: dict[tuple[str, str], str] = {}
        self.ignore_changes: dict[tuple[str, str], list[str]] = {}
        self.wire_inputs: dict[tuple[str, str], dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:
        key = (request.type, request.name)
        self.parents[key] = request.parent
        self.ignore_changes[key] = list(request.ignoreChanges)
        self.wire_inputs[key] = json_format.MessageToDict(request.object)
        return super().RegisterResource(request)


def plain_strings(value: Any) -> Iterator[str]:
    """Every string in a wire value that is not inside a secret: what `pulumi preview` and the
    state show in clear."""
    if isinstance(value, dict):
        if value.get(_special_sig_key) == _special_secret_sig:
            return
        for item in value.values():
            yield from plain_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from plain_strings(item)
    elif isinstance(value, str):
        yield value


@dataclass(frozen=True)
class Options:
    """A resource's options as the program passed them (mocks never see them): explicit
    ``depends_on`` as (type, name) pairs, and the replacement-related flags."""

    depends_on: frozenset[tuple[str, str]]
    delete_before_replace: bool
    ignore_changes: tuple[str, ...]
    replace_on_changes: tuple[str, ...]
    retain_on_delete: bool


OPTIONS: dict[tuple[str, str], Options] = {}


def record_options(args: pulumi.ResourceTransformationArgs) -> None:
    """A stack transformation: called client-side for every resource, under mocks too, with
    the options the program gave it (merged with its parent's)."""
    opts = args.opts
    OPTIONS[(args.type_, args.name)] = Options(
        depends_on=frozenset((d._type, d._name) for d in (opts.depends_on or [])),  # type: ignore[union-attr]
        delete_before_replace=bool(opts.delete_before_replace),
        ignore_changes=tuple(opts.ignore_changes or ()),
        replace_on_changes=tuple(opts.replace_on_changes or ()),
        retain_on_delete=bool(opts.retain_on_delete),
    )
    return None


MOCKS = AwsMocks()
MONITOR = RecordingMonitor(MOCKS)
pulumi.runtime.set_mocks(MOCKS, project="orderflow", stack="test", preview=False, monitor=MONITOR)


@dataclass
class Deployment:
    """A finished mock run: every registered resource and the resolved exported outputs."""

    resources: list[Recorded]
    outputs: dict[str, Any]
    calls: list[pulumi.runtime.MockCallArgs] = field(default_factory=list)
    parents: dict[tuple[str, str], str] = field(default_factory=dict)
    ignore_changes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    options: dict[tuple[str, str], Options] = field(default_factory=dict)
    wire_inputs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    secret_outputs: dict[str, bool] = field(default_factory=dict)  # stack output → is_secret
    generated: list[str] = field(default_factory=list)  # every generated secret value

    def named(self, typ: str, name: str) -> Recorded:
        return next(r for r in self.resources if r.typ == typ and r.name == name)

    def options_of(self, resource: Recorded) -> Options:
        return self.options[(resource.typ, resource.name)]

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.typ == typ]

    def by_id(self, rid: str) -> Recorded:
        return next(r for r in self.resources if r.id == rid)

    def count(self, typ: str) -> int:
        return len(self.of_type(typ))


@contextmanager
def quiet_pulumi_aws() -> Iterator[None]:
    """pulumi_aws lazily imports modules that warn about its own deprecations; not ours."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_aws\.")
        yield


def drain_leftover_tasks(bound_s: float = 30) -> None:
    """Let what a run left on Pulumi's event loop finish (bounded; the rest is cancelled).

    A program that raises (a config the program refuses) returns with registrations and applies
    still pending; left alone they would run inside the next test's program and fail it with
    this run's error.
    """
    loop = _ensure_event_loop()
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not pending:
        return
    _, late = loop.run_until_complete(asyncio.wait(pending, timeout=bound_s))
    for task in late:
        task.cancel()
    for task in pending:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" noise


def run_program(
    cfg: StackConfig, zones: str = "abc", offerings: list[tuple[str, str]] | None = None
) -> Deployment:
    """Run the program under mocks to completion (every registration awaited) and return it.
    ``zones`` (AZ suffixes) and ``offerings`` script what EC2 reports (default: every type
    everywhere)."""
    MOCKS.reset()
    MOCKS.zones, MOCKS.offerings = zones, offerings
    MONITOR.parents.clear()
    MONITOR.ignore_changes.clear()
    MONITOR.wire_inputs.clear()
    OPTIONS.clear()
    resolved: dict[str, Any] = {}
    secret_outputs: dict[str, bool] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        root = pulumi.runtime.get_root_resource()
        if record_options not in (root._transformations or []):  # type: ignore[union-attr]
            pulumi.runtime.register_stack_transformation(record_options)
        outputs = build(cfg, "test")

        async def secretness() -> dict[str, bool]:
            return {key: await output.is_secret() for key, output in outputs.items()}

        flags = pulumi.Output.from_input(asyncio.ensure_future(secretness()))
        return pulumi.Output.all(
            pulumi.Output.all(**outputs).apply(resolved.update),
            flags.apply(secret_outputs.update),
        )

    with quiet_pulumi_aws():
        try:
            program()
        finally:
            drain_leftover_tasks()
    return Deployment(
        list(MOCKS.resources),
        resolved,
        list(MOCKS.calls),
        dict(MONITOR.parents),
        dict(MONITOR.ignore_changes),
        dict(OPTIONS),
        dict(MONITOR.wire_inputs),
        secret_outputs,
        list(MOCKS.generated),
    )


BASE_CONFIG = {"region": "eu-central-1", "kafkaClusterId": "ZljhLFr_RvuBvx_LI3XmUg"}


@pytest.fixture(scope="session")
def deploy() -> Callable[..., Deployment]:
    """``deploy(brokerCount="1", ...)``: run the program for BASE_CONFIG plus raw config
    overrides (strings, as ``pulumi config`` stores them). Runs are cached per config."""
    cache: dict[str, Deployment] = {}

    def run(**raw: str) -> Deployment:
        cfg = parse_config({**BASE_CONFIG, **raw})
        if repr(cfg) not in cache:
            cache[repr(cfg)] = run_program(cfg)
        return cache[repr(cfg)]

    return run

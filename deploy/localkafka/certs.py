"""A private CA and one TLS certificate per node, as PEM files (Python ``cryptography``).

Layout under the security dir (every file mode 0600, the dir 0700)::

    ca.pem         the CA certificate (what clients trust: ``ORDERFLOW_SSL_CA_LOCATION``)
    ca.key         the CA's private key (only needed to issue or renew node certificates)
    node-<id>.pem  the node's private key followed by its certificate and the CA's
                   (Kafka's ``ssl.keystore.type=PEM`` file)

Existing files are reused while valid for at least ``RENEW_BEFORE``; ``renew=True`` issues a new
CA and new node certificates (clients must then trust the new ``ca.pem``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from processors.errors import LocalKafkaError

CA_VALIDITY = dt.timedelta(days=825)
NODE_VALIDITY = dt.timedelta(days=397)
RENEW_BEFORE = dt.timedelta(days=30)
CA_CERT, CA_KEY = "ca.pem", "ca.key"


@dataclass(frozen=True)
class NodeIdentity:
    """What goes into one node's certificate: its principal (the CN) and its addresses."""

    name: str  # e.g. "node-1"; the TLS principal is User:<name> after Kafka's mapping rule
    addresses: tuple[str, ...] = ("127.0.0.1", "localhost")


def node_file(directory: Path, name: str) -> Path:
    return directory / f"{name}.pem"


def ensure_certificates(
    directory: Path,
    nodes: Iterable[NodeIdentity],
    *,
    renew: bool = False,
    now: dt.datetime | None = None,
) -> bool:
    """Create (or, with ``renew``, replace) the CA and the nodes' certificates in ``directory``.

    Returns True if anything was (re)issued. A node certificate is reissued when missing, not
    signed by the current CA, or expiring within ``RENEW_BEFORE``.
    """
    now = now or dt.datetime.now(dt.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    issued = False
    ca = None if renew else _load_ca(directory, now)
    if ca is None:
        ca = _new_ca(now)
        write_private(directory / CA_KEY, _key_pem(ca[1]))
        write_private(directory / CA_CERT, ca[0].public_bytes(serialization.Encoding.PEM))
        issued = True
    ca_cert, ca_key = ca
    for node in nodes:
        path = node_file(directory, node.name)
        if not issued and _node_valid(path, ca_cert, now):
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _node_cert(node, key, ca_cert, ca_key, now)
        pems = _key_pem(key) + cert.public_bytes(serialization.Encoding.PEM)
        write_private(path, pems + ca_cert.public_bytes(serialization.Encoding.PEM))
        issued = True
    return issued


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``data`` readable by the owner only, from the first byte on (atomic replace)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_ca(
    directory: Path, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    cert_file, key_file = directory / CA_CERT, directory / CA_KEY
    if not (cert_file.is_file() and key_file.is_file()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except ValueError as exc:
        raise LocalKafkaError(
            f"unreadable CA in {directory} ({exc}); start with --renew-certs to issue a new one"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.not_valid_after_utc - now < (
        RENEW_BEFORE
    ):
        return None
    return cert, key


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


def _new_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "orderflow local Kafka CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _node_cert(
    node: NodeIdentity,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
) -> x509.Certificate:
    names: list[x509.GeneralName] = []
    for address in node.addresses:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            names.append(x509.DNSName(address))
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node.name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + NODE_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        # Nodes are TLS servers (clients, peers) and TLS clients (to the controllers).
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _node_valid(path: Path, ca_cert: x509.Certificate, now: dt.datetime) -> bool:
    if not path.is_file():
        return False
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except ValueError:
        return False
    leaf = certs[0]
    if leaf.not_valid_after_utc - now < RENEW_BEFORE:
        return False
    try:
        leaf.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, Exception):  # InvalidSignature is not a ValueError
        return False
    return True

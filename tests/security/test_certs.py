"""The local CA and node certificates (deploy.localkafka.certs): pure file work, no broker."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat

from cryptography import x509

from deploy.localkafka.certs import NodeIdentity, ensure_certificates, node_file

NODES = [NodeIdentity("node-1"), NodeIdentity("node-2")]


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leaf(path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def test_ca_and_nodes_are_issued_private_and_verifiable(tmp_path) -> None:
    assert ensure_certificates(tmp_path / "s", NODES)
    directory = tmp_path / "s"
    assert mode(directory) == 0o700
    assert all(mode(p) == 0o600 for p in directory.iterdir())
    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    for node in NODES:
        cert = leaf(node_file(directory, node.name))
        cert.verify_directly_issued_by(ca)
        assert cert.subject.rfc4514_string() == f"CN={node.name}"
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
        assert "localhost" in sans.get_values_for_type(x509.DNSName)
        pem = node_file(directory, node.name).read_text()
        assert pem.startswith("-----BEGIN PRIVATE KEY-----") and pem.count("CERTIFICATE-----") == 4


def test_reused_on_restart_and_renewed_on_request(tmp_path) -> None:
    ensure_certificates(tmp_path, NODES)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert not ensure_certificates(tmp_path, NODES)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert ensure_certificates(tmp_path, NODES, renew=True)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert all(after[name] != before[name] for name in before)


def test_a_node_certificate_near_expiry_is_reissued(tmp_path) -> None:
    ensure_certificates(tmp_path, NODES)
    ca_before = (tmp_path / "ca.pem").read_bytes()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=380)  # node certs last 397 days
    assert ensure_certificates(tmp_path, NODES, now=later)
    assert (tmp_path / "ca.pem").read_bytes() == ca_before  # the CA still has years left
    assert leaf(node_file(tmp_path, "node-1")).not_valid_after_utc > later + dt.timedelta(days=300)


def test_a_new_node_gets_a_certificate_from_the_same_ca(tmp_path) -> None:
    ensure_certificates(tmp_path, NODES[:1])
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    assert ensure_certificates(tmp_path, NODES)
    leaf(node_file(tmp_path, "node-2")).verify_directly_issued_by(ca)

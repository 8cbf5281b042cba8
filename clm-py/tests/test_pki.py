"""Issuance as a Python user drives it, every certificate and CRL checked by
the openssl command."""

import pytest

import clm
from conftest import openssl


def issue(handle, pki, cn, **extra):
    outcome = handle.issue_certificate(pki["system"], {
        "issuer_id": pki["inter"].certificate.id,
        "validity_days": 90,
        "subject": {"common_name": cn},
        "sans": [{"type": "DNS", "value": cn}, {"type": "IP", "value": "127.0.0.1"}],
        "kind": "tls_server",
        "policy_id": pki["policy"].id,
        **extra,
    })
    assert isinstance(outcome, clm.IssuanceOutcome) and outcome.outcome == "issued"
    assert outcome.request is None
    return outcome.certificate


def test_root_intermediate_server_key_revocation_crl(handle, pki, tmp_path):
    root, inter = pki["root"].certificate, pki["inter"].certificate
    assert isinstance(pki["root"], clm.CertificateAuthority)
    assert isinstance(root, clm.Certificate)
    assert root.is_ca and root.certificate_kind == "root_ca"
    assert inter.issuer_certificate_id == root.id

    server = issue(handle, pki, "server.example.com", key_algorithm="ecdsa_p256")
    assert server.status == "active"
    (tmp_path / "root.pem").write_text(root.certificate_pem)
    (tmp_path / "intermediate.pem").write_text(inter.certificate_pem)
    (tmp_path / "server.pem").write_text(server.certificate_pem)
    verified = openssl(
        "verify", "-CAfile", "root.pem", "-untrusted", "intermediate.pem", "server.pem",
        cwd=tmp_path,
    )
    assert verified.returncode == 0, verified.stderr

    key = handle.export_private_key(pki["system"], server.id)
    assert key.startswith("-----BEGIN PRIVATE KEY-----")
    pub_from_key = openssl("pkey", "-pubout", stdin=key).stdout
    pub_from_cert = openssl("x509", "-noout", "-pubkey", stdin=server.certificate_pem).stdout
    assert pub_from_key == pub_from_cert

    other = issue(handle, pki, "old.example.com")
    revocation = handle.revoke_certificate(pki["system"], other.id, "key_compromise", "test")
    assert isinstance(revocation, clm.CertificateRevocation)
    assert revocation.revocation_reason == "key_compromise"

    summary = handle.generate_crl(pki["system"], inter.id)
    assert isinstance(summary, clm.CrlSummary)
    assert summary.entry_count == 1 and summary.kind == "full" and summary.partition is None
    crl = handle.latest_crl(pki["system"], inter.id)
    assert isinstance(crl, clm.GeneratedCrl)
    assert crl.crl_number == summary.crl_number and crl.entry_count == 1
    (tmp_path / "crl.pem").write_text(crl.pem)
    checked = openssl(
        "crl", "-in", "crl.pem", "-CAfile", "intermediate.pem", "-noout", "-text", cwd=tmp_path
    )
    assert checked.returncode == 0 and "verify OK" in checked.stderr + checked.stdout
    assert other.serial_number.upper() in checked.stdout.replace(":", "")

    for log in ("secure", "core"):
        report = handle.verify_audit_chain(pki["system"], log)
        assert report.broken is None and report.rows_checked > 0


def test_records_are_typed_read_only_objects(handle, pki):
    cert = pki["root"].certificate
    assert type(cert).__name__ == "Certificate" and not isinstance(cert, dict)
    with pytest.raises(AttributeError):
        cert.status = "revoked"
    assert cert.to_dict()["id"] == str(cert.id)  # JSON-ready: the id as text
    assert pki["root"].to_dict()["certificate"]["id"] == str(cert.id)
    again = handle.get_certificate(pki["system"], cert.id)
    assert again.id == cert.id and again.serial_number == cert.serial_number
    assert "Certificate(id=" in repr(cert)


def test_errors_are_one_class_per_code():
    names = [name for _, name in clm.error_codes()]
    for name in names:
        cls = getattr(clm, name)
        assert issubclass(cls, clm.ClmError)
    assert clm.NotFound.code == "NOT_FOUND"
    assert len(set(names)) == len(names) == 13
    assert clm.StorageFull.code == "STORAGE_FULL"


def test_open_errors(tmp_path):
    with pytest.raises(clm.InvalidInput):
        clm.Clm.open(sqlite_dir=str(tmp_path))
    with pytest.raises(clm.Configuration):
        clm.Clm.open(sqlite_dir=str(tmp_path), master_key="not base64 of 32 bytes")
    with pytest.raises(TypeError):
        clm.Clm.open(sqlite_dir=42, master_key="x")
    with pytest.raises(TypeError):
        clm.Clm.open(sqlite_dir=str(tmp_path), bogus=1)


def test_close_then_every_call_raises_closed(tmp_path):
    with clm.Clm.open(
        sqlite_dir=tmp_path / "d", master_key_file=tmp_path / "k", create_master_key=True
    ) as c:
        system = c.system_actor()
        assert not c.closed
    assert c.closed
    c.close()  # idempotent
    with pytest.raises(clm.Closed):
        c.system_actor()
    with pytest.raises(clm.Closed):
        c.create_organization(system, {"org_code": "ORG", "name": "Org"})
    with pytest.raises(clm.Closed):
        c.version()

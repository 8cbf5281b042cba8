"""Exports as a Python user drives them: certificates in every format and
PKCS #12 files, opened by the openssl command and by `cryptography`."""

import base64

import pytest

import clm
from conftest import openssl

PASSWORD = "Correct horse battery 9"


def issue(handle, pki, cn):
    outcome = handle.issue_certificate(pki["system"], {
        "issuer_id": pki["inter"].certificate.id,
        "validity_days": 90,
        "subject": {"common_name": cn},
        "sans": [{"type": "DNS", "value": cn}],
        "kind": "tls_server",
        "policy_id": pki["policy"].id,
    })
    return outcome.certificate


def test_export_certificate_in_every_format(handle, pki, tmp_path):
    system = pki["system"]
    server = issue(handle, pki, "export.example.com")

    pem = handle.export_certificate(system, server.id)
    assert isinstance(pem, clm.CertificateExport)
    assert pem.format == "pem" and pem.certificates == 1
    assert pem.text == server.certificate_pem
    assert base64.b64decode(pem.data_base64).decode() == pem.text

    der = handle.export_certificate(system, server.id, "der")
    assert der.text is None and der.media_type == "application/pkix-cert"
    (tmp_path / "leaf.der").write_bytes(base64.b64decode(der.data_base64))
    parsed = openssl("x509", "-inform", "DER", "-in", "leaf.der", "-noout", "-subject", cwd=tmp_path)
    assert parsed.returncode == 0 and "export.example.com" in parsed.stdout, parsed.stderr

    chain = handle.export_certificate(system, server.id, "pem_chain")
    assert chain.certificates == 3
    assert chain.text.startswith(server.certificate_pem)
    assert chain.text.endswith(pki["root"].certificate.certificate_pem)

    p7 = handle.export_certificate(system, server.id, "pkcs7_der")
    (tmp_path / "chain.p7b").write_bytes(base64.b64decode(p7.data_base64))
    printed = openssl("pkcs7", "-inform", "DER", "-in", "chain.p7b", "-print_certs", "-noout",
                      cwd=tmp_path)
    assert printed.returncode == 0 and printed.stdout.count("subject=") == 3, printed.stderr
    p7_pem = handle.export_certificate(system, server.id, "pkcs7_pem")
    assert p7_pem.text.startswith("-----BEGIN PKCS7-----")

    x509 = pytest.importorskip("cryptography.x509")
    pkcs7 = pytest.importorskip("cryptography.hazmat.primitives.serialization.pkcs7")
    certs = pkcs7.load_der_pkcs7_certificates(base64.b64decode(p7.data_base64))
    assert x509.load_pem_x509_certificate(server.certificate_pem.encode()) in certs

    with pytest.raises(clm.InvalidInput):
        handle.export_certificate(system, server.id, "pfx")
    with pytest.raises(clm.NotFound):
        handle.export_certificate(system, "00000000-0000-0000-0000-000000000000")


def test_export_pkcs12_opens_in_openssl_and_cryptography(handle, pki, tmp_path):
    system = pki["system"]
    server = issue(handle, pki, "p12.example.com")

    p12 = handle.export_pkcs12(system, server.id, PASSWORD, {"iterations": 10_000})
    assert isinstance(p12, clm.Pkcs12Export)
    assert p12.encryption == "modern" and p12.certificates == 3
    assert p12.friendly_name == "p12.example.com"
    assert p12.data_base64 not in repr(p12)  # it holds the key
    data = base64.b64decode(p12.data_base64)
    (tmp_path / "server.p12").write_bytes(data)
    info = openssl("pkcs12", "-info", "-in", "server.p12", "-passin", f"pass:{PASSWORD}", "-noenc",
                   cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    out = info.stdout + info.stderr
    assert "MAC: sha256" in out and "AES-256-CBC" in out and "friendlyName: p12.example.com" in out

    legacy = handle.export_pkcs12(system, server.id, PASSWORD,
                                  {"encryption": "legacy", "iterations": 10_000,
                                   "include_chain": False, "friendly_name": "old device"})
    assert legacy.certificates == 1
    (tmp_path / "legacy.p12").write_bytes(base64.b64decode(legacy.data_base64))
    info = openssl("pkcs12", "-legacy", "-info", "-in", "legacy.p12", "-passin", f"pass:{PASSWORD}",
                   "-noenc", cwd=tmp_path)
    assert info.returncode == 0 and "pbeWithSHA1And3-KeyTripleDES-CBC" in info.stdout + info.stderr

    pkcs12 = pytest.importorskip("cryptography.hazmat.primitives.serialization.pkcs12")
    loaded = pkcs12.load_pkcs12(data, PASSWORD.encode())
    assert loaded.cert.friendly_name == b"p12.example.com"
    assert len(loaded.additional_certs) == 2
    key, cert, more = pkcs12.load_key_and_certificates(
        base64.b64decode(legacy.data_base64), PASSWORD.encode())
    assert key is not None and more == []

    # The key alone, encrypted: openssl opens it with the password.
    encrypted = handle.export_private_key(system, server.id,
                                          {"password": PASSWORD, "iterations": 10_000})
    assert encrypted.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    opened = openssl("pkcs8", "-passin", f"pass:{PASSWORD}", stdin=encrypted)
    assert opened.returncode == 0 and "BEGIN PRIVATE KEY" in opened.stdout, opened.stderr

    # Weak passwords and a certificate without a key are refused by name.
    for weak in ("", "short"):
        with pytest.raises(clm.InvalidInput) as bad:
            handle.export_pkcs12(system, server.id, weak)
        assert "password" in str(bad.value)
    bundle = handle.create_csr({"common_name": "nokey.example.com"},
                               [{"type": "DNS", "value": "nokey.example.com"}])
    from_csr = handle.issue_certificate(system, {
        "issuer_id": pki["inter"].certificate.id, "validity_days": 30,
        "policy_id": pki["policy"].id, "csr": bundle.csr_pem,
    }).certificate
    with pytest.raises(clm.NotFound) as missing:
        handle.export_pkcs12(system, from_csr.id, PASSWORD)
    assert "private key" in str(missing.value)

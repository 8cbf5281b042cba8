"""Partitioned and delta CRLs from Python: URLs derived from the public base
URL, the latest CRL of each scope served as stored, every variant verified
by the openssl command and parsed by `cryptography`."""

import pytest
from cryptography import x509

import clm
from conftest import openssl

BASE = "https://pki.example.test"


@pytest.fixture()
def based(tmp_path):
    c = clm.Clm.open(
        sqlite_dir=tmp_path / "data",
        master_key_file=tmp_path / "master.key",
        create_master_key=True,
        public_base_url=BASE + "/",
    )
    yield c
    c.close()


def der_of(crl):
    return x509.load_pem_x509_crl(crl.pem.encode())


def pem_der(pem):
    from cryptography.hazmat.primitives.serialization import Encoding
    return x509.load_pem_x509_crl(pem.encode()).public_bytes(Encoding.DER)


def test_partitioned_and_delta_crls(based, tmp_path):
    system = based.system_actor()
    root = based.create_root_ca(system, {"subject": {"common_name": "Py CRL Root"}})
    ca = based.create_intermediate_ca(system, root.certificate.id, {
        "subject": {"common_name": "Py CRL CA"},
        "validity_days": 1000,
        "crl_partitions": 2,
        "delta_crls": True,
    }).certificate
    leaf = based.issue_certificate(system, {
        "issuer_id": ca.id, "validity_days": 30, "subject": {"common_name": "crl.example.com"},
        "sans": [{"type": "DNS", "value": "crl.example.com"}], "kind": "tls_server",
    }).certificate
    text = openssl("x509", "-noout", "-text", stdin=leaf.certificate_pem).stdout
    assert f"{BASE}/crl/{ca.id}/" in text and f"{BASE}/ocsp" in text
    based.revoke_certificate(system, leaf.id, "superseded")

    full = based.generate_crl(system, ca.id)
    assert full.kind == "full" and full.entry_count == 1
    parts = [based.generate_scoped_crl(system, ca.id, partition=p) for p in (0, 1)]
    assert sorted(p.entry_count for p in parts) == [0, 1]
    assert [p.partition for p in parts] == [0, 1]
    delta = based.generate_scoped_crl(system, ca.id, delta=True)
    assert delta.kind == "delta" and delta.base_crl_number == full.crl_number

    # Generation returns a summary; the CRL is served from the store.
    published = {
        "full": based.latest_crl(system, ca.id),
        "p0": based.latest_crl(system, ca.id, partition=0),
        "p1": based.latest_crl(system, ca.id, partition=1),
        "delta": based.latest_crl(system, ca.id, delta=True),
    }
    for summary, name in [(full, "full"), (parts[0], "p0"), (parts[1], "p1"), (delta, "delta")]:
        assert published[name].crl_number == summary.crl_number
        assert len(pem_der(published[name].pem)) == summary.size_bytes

    (tmp_path / "ca.pem").write_text(ca.certificate_pem)
    for name, crl in published.items():
        (tmp_path / f"{name}.pem").write_text(crl.pem)
        checked = openssl("crl", "-in", f"{name}.pem", "-CAfile", "ca.pem", "-noout", cwd=tmp_path)
        assert checked.returncode == 0 and "verify OK" in checked.stderr + checked.stdout, name

    issuer_key = x509.load_pem_x509_certificate(ca.certificate_pem.encode()).public_key()
    parsed = der_of(published["delta"])
    assert parsed.is_signature_valid(issuer_key)
    indicator = parsed.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    assert indicator.critical and indicator.value.crl_number == full.crl_number
    idp = der_of(published["p1"]).extensions.get_extension_for_class(x509.IssuingDistributionPoint)
    assert idp.critical and idp.value.full_name[0].value == f"{BASE}/crl/{ca.id}/1.crl"
    fresh = der_of(published["full"]).extensions.get_extension_for_class(x509.FreshestCRL)
    assert fresh.value[0].full_name[0].value == f"{BASE}/crl/{ca.id}/delta.crl"

    with pytest.raises(clm.NotFound):
        based.latest_crl(system, root.certificate.id)
    with pytest.raises(clm.InvalidInput):
        based.generate_scoped_crl(system, ca.id, partition=2)


def test_bad_public_base_url_is_refused(tmp_path):
    with pytest.raises(clm.InvalidInput):
        clm.Clm.open(
            sqlite_dir=tmp_path / "data",
            master_key_file=tmp_path / "master.key",
            create_master_key=True,
            public_base_url="ftp://pki.example.test/?q",
        )

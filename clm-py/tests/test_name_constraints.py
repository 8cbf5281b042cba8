"""A CA created with name constraints from Python: the extension is written
(openssl shows it), issuance outside it is a PolicyViolation naming the
rule, and a default intermediate validity is clamped to its issuer."""

import pytest

import clm
from conftest import openssl


def test_a_constrained_ca_issues_only_inside_its_subtrees(handle, tmp_path):
    system = handle.system_actor()
    root = handle.create_root_ca(system, {
        "subject": {"common_name": "Py Constrained Root", "organization": "Acme", "country": "US"},
        "validity_days": 100,
        "permitted_subtrees": [
            {"type": "DNS", "value": "example.com"},
            {"type": "IP", "value": "10.0.0.0/8"},
            {"type": "DIRNAME", "value": "O=Acme,C=US"},
        ],
        "excluded_subtrees": [{"type": "DNS", "value": "secret.example.com"}],
    })
    inter = handle.create_intermediate_ca(system, root.certificate.id, {
        "subject": {"common_name": "Py Constrained Issuing", "organization": "Acme", "country": "US"},
    })
    # The default validity (3650 days) would outlive the 100-day root.
    assert isinstance(inter.validity_clamp, clm.ValidityClamp)
    assert inter.validity_clamp.default_days == 3650
    assert inter.certificate.not_after == root.certificate.not_after

    def issue(name):
        return handle.issue_certificate(system, {
            "issuer_id": inter.certificate.id,
            "validity_days": 30,
            "subject": {"common_name": name, "organization": "Acme", "country": "US"},
            "sans": [{"type": "DNS", "value": name}],
            "kind": "tls_server",
        })

    leaf = issue("www.example.com").certificate
    (tmp_path / "root.pem").write_text(root.certificate.certificate_pem)
    (tmp_path / "inter.pem").write_text(inter.certificate.certificate_pem)
    (tmp_path / "leaf.pem").write_text(leaf.certificate_pem)
    verified = openssl(
        "verify", "-CAfile", "root.pem", "-untrusted", "inter.pem", "leaf.pem", cwd=tmp_path
    )
    assert verified.returncode == 0, verified.stderr
    text = openssl("x509", "-in", "root.pem", "-noout", "-text", cwd=tmp_path).stdout
    assert "X509v3 Name Constraints: critical" in text and "DNS:example.com" in text

    for name, words in [
        ("www.example.org", "outside the permitted subtrees"),
        ("db.secret.example.com", "excluded subtree DNS:secret.example.com"),
    ]:
        with pytest.raises(clm.PolicyViolation) as refused:
            issue(name)
        [violation] = [v for v in refused.value.violations if v.rule == "name_constraints"]
        assert name in violation.message and words in violation.message

    with pytest.raises(clm.InvalidInput) as bad:
        handle.create_root_ca(system, {
            "subject": {"common_name": "Bad"},
            "permitted_subtrees": [{"type": "IP", "value": "10.0.0.1/8"}],
        })
    assert bad.value.field.endswith("permitted_subtrees[0]")

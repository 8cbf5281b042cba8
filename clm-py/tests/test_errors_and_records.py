"""Errors keep the core's structure (code, field, violations, entity) and
subclass the matching builtin; numbers out of range are InvalidInput naming
the field; records give ids as UUID and timestamps as UTC datetimes."""

import datetime
import json
import pickle
import uuid

import pytest

import clm


def test_error_classes_follow_the_core_codes_and_builtins():
    assert [name for _, name in clm.error_codes()][:3] == ["NotFound", "AlreadyExists", "InvalidInput"]
    for number, name in clm.error_codes():
        cls = getattr(clm, name)
        assert issubclass(cls, clm.ClmError) and cls.number == number
    assert issubclass(clm.InvalidInput, ValueError)
    assert issubclass(clm.NotFound, LookupError)
    assert issubclass(clm.PermissionDenied, PermissionError)
    assert issubclass(clm.PolicyViolation, ValueError)
    assert not issubclass(clm.Database, ValueError)


def test_a_policy_refusal_lists_its_violated_rules(handle, pki):
    system = pki["system"]
    with pytest.raises(clm.PolicyViolation) as refused:
        handle.issue_certificate(system, {
            "issuer_id": pki["inter"].certificate.id, "validity_days": 500,
            "policy_id": pki["policy"].id,
            "subject": {"common_name": "www.evil.org"},
        })
    error = refused.value
    assert error.code == "POLICY_VIOLATION" and isinstance(error, ValueError)
    assert isinstance(error.violations, list) and len(error.violations) >= 2
    assert all(isinstance(v, clm.Violation) and v.message for v in error.violations)
    rules = {v.rule for v in error.violations}
    assert "max_validity_days" in rules
    assert any("domain" in rule for rule in rules), rules
    assert error.field is None and error.entity is None
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is clm.PolicyViolation and again.violations == error.violations


def test_invalid_input_names_the_field(handle, pki):
    system = pki["system"]
    with pytest.raises(ValueError) as bad:  # InvalidInput is a ValueError
        handle.revoke_certificate(system, pki["inter"].certificate.id, "no_such_reason")
    assert isinstance(bad.value, clm.InvalidInput) and bad.value.field == "reason"
    with pytest.raises(clm.InvalidInput) as nested:
        handle.create_root_ca(system, {"subject": {"common_name": "X", "bogus": "field"}})
    assert nested.value.field and nested.value.field.startswith("new")


def test_not_found_and_permission_denied_carry_the_entity(handle, pki):
    system = pki["system"]
    with pytest.raises(LookupError) as missing:
        handle.get_certificate(system, uuid.UUID(int=0))
    assert isinstance(missing.value, clm.NotFound) and missing.value.entity
    nobody = handle.create_user(system, {"username": "nobody", "email": "nobody@example.com",
                                         "password": "a long enough passphrase 1"})
    actor = handle.validate_session(handle.authenticate("nobody", "a long enough passphrase 1").token)
    with pytest.raises((PermissionError, LookupError)) as denied:
        handle.create_root_ca(actor, {"subject": {"common_name": "Not allowed"}})
    assert isinstance(denied.value, (clm.PermissionDenied, clm.NotFound))
    if isinstance(denied.value, clm.PermissionDenied):
        assert denied.value.entity
    assert nobody.id == actor.user_id


@pytest.mark.parametrize("value", [2**64, 2**70, -(2**63) - 1, 10**40])
def test_numbers_past_64_bits_are_invalid_input_naming_the_field(handle, pki, value):
    system = pki["system"]
    inter_id = pki["inter"].certificate.id
    with pytest.raises(clm.InvalidInput) as top:
        handle.generate_crl(system, inter_id, value)
    assert top.value.field == "next_update_hours"
    assert "next_update_hours" in str(top.value)
    with pytest.raises(clm.InvalidInput) as nested:
        handle.issue_certificate(system, {"issuer_id": inter_id, "validity_days": value})
    assert nested.value.field == "request.validity_days"
    with pytest.raises(clm.InvalidInput) as listed:
        handle.mark_notifications_delivered(system, [str(uuid.uuid4()), value])
    assert listed.value.field == "ids[1]"


def test_numbers_past_the_field_range_are_invalid_input_naming_the_field(handle, pki):
    system = pki["system"]
    with pytest.raises(clm.InvalidInput) as wide:
        handle.issue_certificate(system, {"issuer_id": pki["inter"].certificate.id,
                                          "validity_days": 2**32})
    assert wide.value.field == "request.validity_days"
    with pytest.raises(clm.InvalidInput) as opened:
        clm.Clm.open(sqlite_dir="/nonexistent", master_key="x", cache_ttl_ms=2**64)
    assert opened.value.field == "cache_ttl_ms"


def test_records_have_uuid_ids_and_utc_datetimes(handle, pki):
    cert = pki["root"].certificate
    assert isinstance(cert.id, uuid.UUID)
    assert isinstance(cert.not_before, datetime.datetime) and cert.not_before.tzinfo is not None
    assert cert.not_before.utcoffset() == datetime.timedelta(0)
    assert cert.not_before < cert.not_after
    assert cert.issuer_certificate_id is None or isinstance(cert.issuer_certificate_id, uuid.UUID)
    inter = pki["inter"].certificate
    assert inter.issuer_certificate_id == cert.id
    # to_dict: JSON-ready, the text the core sent.
    data = cert.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["id"] == str(cert.id)
    assert datetime.datetime.fromisoformat(data["not_before"].replace("Z", "+00:00")) == cert.not_before
    nested = pki["inter"].to_dict()
    assert nested["certificate"]["id"] == str(inter.id)
    assert json.dumps(nested)
    # Ids and timestamps go back in as they came out.
    assert handle.get_certificate(pki["system"], inter.id).id == inter.id
    page = handle.search_certificates(pki["system"], {"expires_after": cert.not_before})
    assert cert.id in {c.id for c in page}


def test_secrets_stay_out_of_repr(handle, pki):
    system = pki["system"]
    handle.create_user(system, {"username": "reprcheck", "email": "reprcheck@example.com",
                                "password": "a long enough passphrase 1"})
    login = handle.authenticate("reprcheck", "a long enough passphrase 1")
    assert login.token and login.token not in repr(login) and "token=<redacted>" in repr(login)
    bundle = handle.create_csr({"common_name": "repr.example.com"})
    assert bundle.private_key_pem not in repr(bundle)
    assert "BEGIN" in bundle.to_dict()["private_key_pem"]

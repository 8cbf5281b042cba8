"""The schema's views as operations, as a Python user calls them."""

import datetime

import pytest

import clm
from test_pki import issue


def test_views_list_what_the_tables_hold(handle, pki):
    system = pki["system"]
    server = issue(handle, pki, "view.example.com")

    active = handle.active_certificates(system)
    assert isinstance(active, clm.ActiveCertificatePage)
    assert server.id in [c.id for c in active.items]
    row = next(c for c in active.items if c.id == server.id)
    assert isinstance(row, clm.ActiveCertificate)
    assert row.common_name == "view.example.com"
    assert row.not_after.tzinfo is not None

    # Issued for 90 days: outside a 7-day window, and refused past 30.
    soon = handle.expiring_certificates(system, 7)
    assert isinstance(soon, clm.ExpiringCertificatePage)
    assert server.id not in [c.id for c in soon.items]
    with pytest.raises(clm.InvalidInput) as refused:
        handle.expiring_certificates(system, 31)
    assert refused.value.field == "days"
    short = handle.issue_certificate(system, {
        "issuer_id": pki["inter"].certificate.id,
        "validity_days": 5,
        "subject": {"common_name": "short.example.com"},
        "sans": [{"type": "DNS", "value": "short.example.com"}],
        "policy_id": pki["policy"].id,
    }).certificate
    expiring = handle.expiring_certificates(system, 7)
    due = next(c for c in expiring.items if c.id == short.id)
    assert isinstance(due, clm.ExpiringCertificate)
    assert 3 <= due.days_until_expiry <= 5
    assert due.not_after - datetime.datetime.now(datetime.timezone.utc) < datetime.timedelta(days=6)

    summary = handle.certificate_summary(system)
    assert isinstance(summary, clm.CertificateSummaryPage)
    assert server.id in [s.certificate_id for s in summary.items]
    assert all(isinstance(s, clm.CertificateSummary) for s in summary.items)

    user = handle.create_user(system, {"username": "viewer", "email": "viewer@example.com"})
    people = handle.active_users_with_roles(system)
    assert isinstance(people, clm.ActiveUserWithRolesPage)
    found = next(p for p in people.items if p.id == user.id)
    assert isinstance(found, clm.ActiveUserWithRoles)
    assert found.role_codes == []

"""Every group of operations, driven the way a Python host would."""

import json
import threading

import pytest

import clm
from conftest import openssl, unique

PASSWORD = "correct horse battery staple"


def test_identity_sessions_api_keys(handle):
    system = handle.system_actor()
    assert system.kind == "system" and system.user_id is None
    assert handle.version() == clm.__version__
    org = handle.create_organization(system, {"org_code": "ACME", "name": "Acme"})
    assert isinstance(org, clm.Organization) and org.status == "active"
    user = handle.create_user(system, {
        "username": "alice", "email": "alice@example.com", "password": PASSWORD,
        "organization_id": org.id,
    })
    assert isinstance(user, clm.User) and not hasattr(user, "password_hash")
    assert handle.get_user_by_username(system, "alice").id == user.id
    updated = handle.update_user(system, user.id, {"display_name": "Alice"})
    assert updated.display_name == "Alice"
    users = handle.list_users(system, {"search": "ali"}, {"limit": 10})
    assert isinstance(users, clm.Page) and [u.id for u in users] == [user.id]
    assert users.next_cursor is None

    with pytest.raises(clm.Authentication):
        handle.authenticate("alice", "wrong password!")
    login = handle.authenticate("alice", PASSWORD, user_agent="pytest")
    assert isinstance(login, clm.LoginResult) and login.user.id == user.id
    assert isinstance(login.session, clm.Session)
    assert login.token not in repr(login) and "<redacted>" in repr(login)
    actor = handle.validate_session(login.token)
    assert isinstance(actor, clm.Actor)
    assert actor.kind == "user" and actor.user_id == user.id
    assert actor.session_id == login.session.id
    assert actor.organization_ids == [org.id]
    with pytest.raises(clm.PermissionDenied) as denied:
        handle.verify_audit_chain(actor, "core")
    assert denied.value.code == "PERMISSION_DENIED"

    # Roles: the user becomes an auditor.
    auditor = handle.get_role_by_code(system, "AUDITOR")
    granted = handle.assign_role(system, user.id, auditor.id)
    assert isinstance(granted, clm.UserRole) and granted.role_id == auditor.id
    handle.assign_role(system, user.id, handle.get_role_by_code(system, "OPERATOR").id)
    actor = handle.actor_for_user(user.id)
    assert handle.get_user(actor, user.id).id == user.id

    created = handle.create_api_key(actor, {
        "name": "ci", "scopes": {"certificates": ["read"]}, "organization_id": org.id,
    })
    assert isinstance(created, clm.CreatedApiKey) and created.key not in repr(created)
    key_actor = handle.authenticate_api_key(created.key)
    assert key_actor.kind == "api_key" and key_actor.api_key_id == created.api_key.id
    assert [k.id for k in handle.list_api_keys(actor)] == [created.api_key.id]
    handle.revoke_api_key(actor, created.api_key.id)
    with pytest.raises(clm.Authentication):
        handle.authenticate_api_key(created.key)

    handle.logout(login.token)
    with pytest.raises(clm.Authentication):
        handle.validate_session(login.token)
    assert handle.revoke_user_sessions(system, user.id) == 0
    assert handle.purge_expired_sessions(system) >= 0

    enrollment = handle.begin_mfa_enrollment(handle.actor_for_user(user.id), PASSWORD)
    assert enrollment.provisioning_uri.startswith("otpauth://")
    assert enrollment.secret_base32 not in repr(enrollment)

    handle.set_password(system, user.id, PASSWORD + "!")
    handle.delete_user(system, user.id)
    with pytest.raises(clm.NotFound):
        handle.get_user(system, user.id)
    assert handle.restore_user(system, user.id).deleted_at is None
    with pytest.raises(clm.Conflict):
        handle.unlock_user(system, user.id)  # not locked


def test_roles_and_organizations(handle):
    system = handle.system_actor()
    parent = handle.create_organization(system, {"org_code": "PARENT", "name": "Parent"})
    child = handle.create_organization(
        system, {"org_code": "CHILD", "name": "Child", "parent_organization_id": parent.id}
    )
    assert child.parent_organization_id == parent.id
    assert {o.id for o in handle.list_organizations(system)} >= {parent.id, child.id}
    assert handle.set_organization_status(system, child.id, "suspended").status == "suspended"
    assert handle.get_organization(system, child.id).status == "suspended"
    user = handle.create_user(system, {"username": "bob", "email": "bob@example.com"})
    handle.add_organization_member(system, parent.id, user.id, "member")
    assert handle.actor_for_user(user.id).organization_ids == [parent.id]
    handle.remove_organization_member(system, parent.id, user.id)
    assert handle.actor_for_user(user.id).organization_ids == []

    role = handle.create_role(system, {
        "role_code": "REVIEWER", "role_name": "Reviewer",
        "permissions": {"workflows": ["read", "approve"]},
    })
    assert isinstance(role, clm.Role) and role.permissions == {"workflows": ["read", "approve"]}
    assert handle.get_role(system, role.id).role_code == "REVIEWER"
    # Permissions as JSON text work too (the core parses both).
    changed = handle.update_role_permissions(system, role.id, json.dumps({"workflows": ["read"]}))
    assert changed.permissions == {"workflows": ["read"]}
    handle.assign_role(system, user.id, role.id)
    handle.revoke_role(system, user.id, role.id)
    assert any(r.id == role.id for r in handle.list_roles(system, {"limit": 100}))
    handle.delete_role(system, role.id)
    with pytest.raises(clm.NotFound):
        handle.get_role(system, role.id)


def test_policies_csr_import_search_renewal(handle, pki, tmp_path):
    system, inter = pki["system"], pki["inter"].certificate
    policy = pki["policy"]
    assert handle.get_policy_by_code(system, "TLS").id == policy.id
    assert policy.policy_rules["max_validity_days"] == 397
    bumped = handle.update_policy(system, policy.id, {"rules": {"max_validity_days": 200,
        "allowed_domains": ["example.com"], "allow_subdomains": True,
        "allowed_ip_ranges": ["127.0.0.0/8"]}})
    assert bumped.version == policy.version + 1
    assert [p.id for p in handle.list_policies(system, {"status": "active"})] == [policy.id]
    draft = handle.create_policy(system, {"policy_code": "DRAFT", "name": "Draft", "status": "draft"})
    handle.delete_policy(system, draft.id)
    assert handle.restore_policy(system, draft.id).id == draft.id

    dry = handle.dry_run_issuance(system, {
        "issuer_id": inter.id, "validity_days": 300, "policy_id": policy.id,
        "subject": {"common_name": "x.example.com"},
    })
    assert isinstance(dry, clm.DryRunReport) and not dry.allowed
    assert any(not r.passed and r.rule == "max_validity_days" for r in dry.rules)
    with pytest.raises(clm.PolicyViolation):
        handle.issue_certificate(system, {
            "issuer_id": inter.id, "validity_days": 300, "policy_id": policy.id,
            "subject": {"common_name": "x.example.com"},
        })

    # CSR made by clm, then issued from the CSR: the key stays with the caller.
    bundle = handle.create_csr({"common_name": "csr.example.com"},
                               [{"type": "DNS", "value": "csr.example.com"}])
    assert isinstance(bundle, clm.CsrBundle) and bundle.private_key_pem not in repr(bundle)
    assert openssl("req", "-noout", "-verify", stdin=bundle.csr_pem).returncode == 0
    from_csr = handle.issue_certificate(system, {
        "issuer_id": inter.id, "validity_days": 30, "policy_id": policy.id,
        "csr": bundle.csr_pem,
    }).certificate
    pub_from_key = openssl("pkey", "-pubout", stdin=bundle.private_key_pem).stdout
    pub_from_cert = openssl("x509", "-noout", "-pubkey", stdin=from_csr.certificate_pem).stdout
    assert pub_from_key == pub_from_cert
    with pytest.raises(clm.NotFound):
        handle.export_private_key(system, from_csr.id)

    # Import into another clm: the chain comes along.
    (tmp_path / "other").mkdir()
    with clm.Clm.open(sqlite_dir=tmp_path / "other", master_key_file=tmp_path / "other.key",
                      create_master_key=True) as other:
        osys = other.system_actor()
        bundle_pem = from_csr.certificate_pem + inter.certificate_pem + pki["root"].certificate.certificate_pem
        report = other.import_certificates(osys, {"pem": bundle_pem})
        assert isinstance(report, clm.ImportReport) and len(report.imported) == 3
        again = other.import_certificates(osys, {"pem": from_csr.certificate_pem})
        assert again.imported == [] and len(again.already_present) == 1
        # A bundle's other PEM blocks are reported, not stored.
        handle.generate_crl(system, inter.id)
        crl_pem = handle.latest_crl(system, inter.id).pem
        mixed = other.import_certificates(osys, {"pem": crl_pem + from_csr.certificate_pem})
        (skipped,) = mixed.skipped
        assert isinstance(skipped, clm.SkippedBlock)
        assert skipped.block == 1 and skipped.label == "X509 CRL" and skipped.reason
        assert len(mixed.already_present) == 1
        (leaf,) = other.search_certificates(osys, {"san": "csr.example.com"}).items
        assert leaf.source == "imported" and leaf.serial_number == from_csr.serial_number
        assert other.get_certificate_by_certificate_id(osys, leaf.certificate_id).id == leaf.id
        chain = other.certificate_chain(osys, leaf.id)
        assert [c.certificate_kind for c in chain][1:] == ["intermediate_ca", "root_ca"]

    found = handle.search_certificates(system, {"san": "csr.example.com", "with_pem": True})
    assert [c.id for c in found] == [from_csr.id] and found.items[0].certificate_pem
    assert handle.get_certificate_pem(system, from_csr.id) == from_csr.certificate_pem
    cas = handle.list_authorities(system)
    assert {ca.certificate.id for ca in cas} == {inter.id, pki["root"].certificate.id}
    assert all(isinstance(ca, clm.CertificateAuthority) for ca in cas)

    renewed = handle.renew_certificate(system, from_csr.id, {"reuse_key": True})
    assert renewed.certificate.replaces_certificate_id == from_csr.id
    handle.delete_certificate(system, renewed.certificate.id)
    assert handle.restore_certificate(system, renewed.certificate.id).deleted_at is None
    refresh = handle.refresh_certificate_statuses(system, "2030-01-01T00:00:00Z")
    assert isinstance(refresh, clm.StatusRefreshReport) and refresh.expired >= 1
    assert isinstance(handle.reconcile(system), clm.ReconcileReport)


def test_revocation_hold_and_crl(handle, pki):
    system, inter = pki["system"], pki["inter"].certificate
    cert = handle.issue_certificate(system, {
        "issuer_id": inter.id, "validity_days": 90, "subject": {"common_name": "hold.example.com"},
    }).certificate
    held = handle.revoke_certificate(system, cert.id, "certificate_hold")
    assert held.revocation_reason == "certificate_hold"
    assert handle.get_certificate(system, cert.id).status == "suspended"
    assert handle.release_certificate_hold(system, cert.id).status == "active"
    crl = handle.generate_crl(system, inter.id, 48)
    assert crl.entry_count == 0 and crl.crl_number >= 1


def test_rotation_with_progress(handle, pki):
    system, inter = pki["system"], pki["inter"].certificate
    for n in range(3):
        handle.issue_certificate(system, {
            "issuer_id": inter.id, "validity_days": 30, "subject": {"common_name": f"r{n}.example.com"},
        })
    seen = []
    threads = set()

    def progress(report):
        seen.append(report)
        threads.add(threading.get_ident())

    report = handle.rotate_data_key(system, 2, progress=progress)
    assert isinstance(report, clm.RotationReport) and report.status == "completed"
    assert seen and all(isinstance(p, clm.RotationProgress) for p in seen)
    assert seen[-1].rotated == seen[-1].total == report.total_items
    assert seen[-1].rotation_id == report.rotation_id
    statuses = handle.key_status(system)
    assert all(isinstance(s, clm.DataKeyStatus) for s in statuses)
    assert sum(s.private_keys for s in statuses if s.key.key_status == "active") == report.total_items
    assert [r.id for r in handle.list_key_rotations(system)] == [report.rotation_id]


def test_import_from_a_file_with_progress(handle, pki, tmp_path):
    system, inter = pki["system"], pki["inter"].certificate
    leaves = [
        handle.issue_certificate(system, {
            "issuer_id": inter.id, "validity_days": 30, "subject": {"common_name": f"f{n}.example.com"},
        }).certificate
        for n in range(3)
    ]
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("".join(c.certificate_pem for c in leaves) + inter.certificate_pem)
    other = clm.Clm.open(
        sqlite_dir=tmp_path / "other", master_key_file=tmp_path / "other.key", create_master_key=True,
    )
    try:
        seen = []
        summary = other.import_certificates_from_file(
            other.system_actor(), str(bundle), progress=seen.append,
        )
        assert isinstance(summary, clm.ImportSummary)
        assert (summary.imported, summary.already_present, summary.certificates_read) == (4, 0, 4)
        assert seen and all(isinstance(p, clm.ImportProgress) for p in seen)
        assert seen[-1].imported == 4 and seen[-1].certificates_read == 4
        again = other.import_certificates_from_file(other.system_actor(), str(bundle))
        assert (again.imported, again.already_present) == (0, 4)
        with pytest.raises(clm.InvalidInput, match="missing.pem"):
            other.import_certificates_from_file(other.system_actor(), str(tmp_path / "missing.pem"))
    finally:
        other.close()


def test_an_exception_in_progress_never_crashes(handle, pki, monkeypatch):
    system = pki["system"]
    unraisable = []
    monkeypatch.setattr("sys.unraisablehook", unraisable.append)

    def broken(report):
        raise RuntimeError("progress callback failed")

    report = handle.rotate_data_key(system, 1, progress=broken)
    assert report.status == "completed"
    assert unraisable and isinstance(unraisable[0].exc_value, RuntimeError)
    with pytest.raises(TypeError):
        handle.rotate_data_key(system, progress="not callable")


def test_workflows_approvals_notifications_lifecycle_audit(handle, pki, tmp_path):
    system = pki["system"]
    org = handle.create_organization(system, {"org_code": "TEAM", "name": "Team"})
    inter = handle.create_intermediate_ca(system, pki["root"].certificate.id, {
        "subject": {"common_name": "Team CA"}, "organization_id": org.id, "validity_days": 1825,
    }).certificate
    workflow = handle.create_workflow(system, {
        "workflow_code": "ONE-APPROVAL", "name": "One approval", "organization_id": org.id,
        "definition": {"steps": [
            {"step_id": 1, "type": "validation"},
            {"step_id": 2, "type": "approval", "approvers": ["role:APPROVER"]},
            {"step_id": 3, "type": "issuance"},
        ]},
    })
    assert isinstance(workflow, clm.Workflow)
    assert handle.get_workflow(system, workflow.id).workflow_code == "ONE-APPROVAL"
    assert handle.get_workflow_by_code(system, "ONE-APPROVAL").id == workflow.id
    assert workflow.id in {w.id for w in handle.list_workflows(system)}
    policy = handle.create_policy(system, {
        "policy_code": "APPROVED", "name": "Needs approval", "workflow_id": workflow.id,
        "organization_id": org.id,
        "rules": {"max_validity_days": 90, "require_approval": True,
                  "workflow_code": "ONE-APPROVAL"},
    })
    approver = handle.create_user(
        system, {"username": "ann", "email": "ann@example.com", "organization_id": org.id}
    )
    handle.assign_role(system, approver.id, handle.get_role_by_code(system, "APPROVER").id)
    requester = handle.create_user(
        system, {"username": "rob", "email": "rob@example.com", "organization_id": org.id}
    )
    handle.assign_role(system, requester.id, handle.get_role_by_code(system, "OPERATOR").id)
    ann, rob = handle.actor_for_user(approver.id), handle.actor_for_user(requester.id)

    def request(cn):
        outcome = handle.issue_certificate(rob, {
            "issuer_id": inter.id, "validity_days": 30, "policy_id": policy.id,
            "subject": {"common_name": cn}, "organization_id": org.id,
        })
        assert outcome.outcome == "pending" and outcome.certificate is None
        assert isinstance(outcome.request, clm.CertificateRequest)
        return outcome.request

    first = request("one.example.com")
    pending = handle.pending_approvals(ann)
    assert [p.workflow_instance_id for p in pending] == [first.workflow_instance_id]
    assert isinstance(pending[0], clm.PendingApproval)
    notes = handle.list_notifications(ann, True)
    assert notes.items and isinstance(notes.items[0], clm.Notification)
    view = handle.decide_approval(ann, first.workflow_instance_id, True, "ok")
    assert isinstance(view, clm.WorkflowInstanceView) and view.instance.status == "completed"
    assert all(isinstance(s, clm.WorkflowStep) for s in view.steps)
    assert handle.get_workflow_instance(rob, first.workflow_instance_id).instance.certificate_id

    second = request("two.example.com")
    cancelled = handle.cancel_workflow(rob, second.workflow_instance_id)
    assert cancelled.instance.status == "cancelled"
    third = request("three.example.com")
    rejected = handle.decide_approval(ann, third.workflow_instance_id, False, "no")
    assert rejected.instance.status == "rejected"
    with pytest.raises(clm.ClmError):
        handle.retry_workflow(rob, third.workflow_instance_id)
    assert handle.expire_stale_workflows(system) == 0

    handle.mark_notification_read(ann, notes.items[0].id)
    assert handle.mark_all_notifications_read(ann) >= 0
    outbox = handle.fetch_undelivered_notifications(system, 100)
    assert handle.mark_notifications_delivered(system, [n.id for n in outbox]) == len(outbox)

    lifecycle = handle.run_lifecycle(system)
    assert isinstance(lifecycle, clm.LifecycleReport) and lifecycle.ran
    assert isinstance(lifecycle.statuses, clm.StatusRefreshReport)

    events = handle.list_audit_events(system, "core", {"event_type": "workflow.approved"})
    assert isinstance(events, clm.Page)
    secure = handle.list_audit_events(system, "secure", page={"limit": 5})
    assert len(secure.items) == 5 and secure.next_cursor
    following = handle.list_audit_events(system, "secure", page={"limit": 5, "cursor": secure.next_cursor})
    assert {e.id for e in following}.isdisjoint({e.id for e in secure})
    assert all(isinstance(e, clm.AuditEvent) for e in secure)
    for log in ("secure", "core"):
        chain = handle.verify_audit_chain(system, log)
        assert isinstance(chain, clm.ChainReport) and chain.broken is None
    archived = handle.archive_audit_events(system, "core", 3650, str(tmp_path / "core.jsonl"))
    assert isinstance(archived, clm.ArchiveReport) and archived.archived == 0


def test_operator_maintenance_and_audit_retention(tmp_path):
    archive = tmp_path / "audit-archive"
    with pytest.raises(clm.InvalidInput) as refused:
        clm.Clm.open(sqlite_dir=tmp_path / "bad", master_key_file=tmp_path / "k",
                     create_master_key=True, audit_retention_days=30)
    assert refused.value.field == "audit_retention_days"
    assert not (tmp_path / "bad").exists()
    with clm.Clm.open(sqlite_dir=tmp_path / "data", master_key_file=tmp_path / "k",
                      create_master_key=True, audit_retention_days=90,
                      audit_archive_dir=str(archive)) as c:
        system = c.system_actor()
        stats = c.database_stats(system)
        assert isinstance(stats, clm.DatabaseStatsReport)
        assert stats.secure.backend == "sqlite" and stats.core.database == "core"
        trail = next(t for t in stats.core.tables if t.name == "audit_log")
        assert isinstance(trail, clm.TableStats) and trail.table_bytes > 0
        assert trail.dead_rows is None
        assert all(isinstance(i, clm.IndexStats) and i.scans is None for i in stats.core.indexes)
        assert isinstance(stats.core.pool, clm.PoolStats) and stats.core.pool.max_connections >= 1
        report = c.maintain(system, vacuum=True)
        assert isinstance(report, clm.MaintenanceReport) and report.vacuum and report.analyze
        assert all(isinstance(s, clm.MaintenanceStep) for s in report.steps)
        assert [s.statement for s in report.steps if s.database == "core"] == [
            "PRAGMA optimize", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"]
        lifecycle = c.run_lifecycle(system)
        retention = lifecycle.audit_retention
        assert isinstance(retention, clm.AuditRetentionReport)
        assert retention.retention_days == 90 and retention.archive_dir == str(archive)
        # Nothing is 90 days old yet.
        assert retention.core_archived == 0 and retention.secure_archived == 0
        assert all(isinstance(r, clm.ArchiveReport) for r in retention.runs)
        with pytest.raises(clm.PermissionDenied):
            c.maintain(c.actor_for_user(c.create_user(system, {
                "username": "nobody", "email": "nobody@example.com"}).id))


def test_master_key_rotation(handle, pki):
    import base64
    import os

    new_key = base64.b64encode(os.urandom(32)).decode()
    report = handle.rotate_master_key(pki["system"], {"master_key": new_key})
    assert report.rotation_type == "master_key" and report.status == "completed"


def test_a_tampered_audit_trail_is_reported(tmp_path):
    import sqlite3

    data = tmp_path / "data"
    options = dict(sqlite_dir=data, master_key_file=tmp_path / "k", create_master_key=True)
    with clm.Clm.open(**options) as c:
        system = c.system_actor()
        for code in ("ONE", "TWO", "THREE"):
            c.create_organization(system, {"org_code": code, "name": code})
    db = sqlite3.connect(data / "core.db")
    db.execute("DROP TRIGGER trg_audit_log_append_only")
    db.execute("UPDATE audit_log SET action = 'forged' WHERE sequence_number = 2")
    db.commit()
    db.close()
    with clm.Clm.open(**options) as c:
        report = c.verify_audit_chain(c.system_actor(), "core")
        assert isinstance(report.broken, clm.ChainBreak)
        assert report.broken.sequence_number == 2 and report.broken.reason

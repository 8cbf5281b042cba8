"""Calls every operation of clm.Clm and clm.aio.Clm with the types the stubs
declare; tests/test_typing.py runs `mypy --strict` on it (never executed)."""

from __future__ import annotations

import datetime
import uuid

import clm
import clm.aio


def every_operation(c: clm.Clm, pem: str) -> None:
    version: str = c.version()
    system: clm.Actor = c.system_actor()
    clm.set_log_level(10)
    clm.set_log_level("TRACE")
    clm.set_log_level(None)
    kind: str = system.kind
    user_id: uuid.UUID | None = system.user_id
    orgs: list[uuid.UUID] = system.organization_ids

    user: clm.User = c.create_user(system, {"username": "ann", "email": "ann@example.com",
                                            "password": "a long passphrase 1"})
    uid: uuid.UUID = user.id
    created: datetime.datetime = user.created_at
    user = c.get_user(system, uid)
    user = c.get_user(system, str(uid))
    user = c.get_user_by_username(system, "ann")
    users: clm.UserPage = c.list_users(system, {"search": "ann"}, {"limit": 10})
    first: list[clm.User] = users.items
    cursor: str | None = users.next_cursor
    for each in users:
        name: str = each.username
    user = c.update_user(system, uid, {"display_name": "Ann"})
    c.delete_user(system, uid)
    user = c.restore_user(system, uid)
    c.set_password(system, uid, "another passphrase 2")
    c.change_password(system, "old passphrase 1", "new passphrase 2", otp="123456")
    user = c.unlock_user(system, uid)
    enrollment: clm.MfaEnrollment = c.begin_mfa_enrollment(system, "a long passphrase 1")
    uri: str = enrollment.provisioning_uri
    c.confirm_mfa_enrollment(system, "123456")
    c.disable_mfa(system, uid, current_password="pw", otp="123456")

    login: clm.LoginResult = c.authenticate("ann", "pw", otp=None, ip_address="127.0.0.1", user_agent="x")
    token: str = login.token
    session: clm.Session = login.session
    actor: clm.Actor = c.validate_session(token)
    actor = c.actor_for_user(uid)
    c.logout(token)
    c.revoke_session(system, session.id)
    ended: int = c.revoke_user_sessions(system, uid)
    ended = c.purge_expired_sessions(system)
    key: clm.CreatedApiKey = c.create_api_key(system, {"name": "ci", "scopes": {"certificates": ["read"]}})
    actor = c.authenticate_api_key(key.key)
    c.revoke_api_key(system, key.api_key.id)
    keys: clm.ApiKeyPage = c.list_api_keys(system, {"include_deleted": True})

    role: clm.Role = c.create_role(system, {"role_code": "R", "role_name": "r",
                                            "permissions": {"certificates": ["read"]}})
    role = c.get_role(system, role.id)
    role = c.get_role_by_code(system, "R")
    roles: clm.RolePage = c.list_roles(system)
    role = c.update_role_permissions(system, role.id, {"certificates": ["read", "create"]})
    c.delete_role(system, role.id)
    assignment: clm.UserRole = c.assign_role(system, uid, role.id)
    c.revoke_role(system, uid, role.id)

    org: clm.Organization = c.create_organization(system, {"org_code": "O", "name": "o"})
    org = c.get_organization(system, org.id)
    organizations: clm.OrganizationPage = c.list_organizations(system)
    org = c.set_organization_status(system, org.id, "suspended")
    c.add_organization_member(system, org.id, uid, "member")
    c.remove_organization_member(system, org.id, uid)

    policy: clm.Policy = c.create_policy(system, {"policy_code": "P", "name": "p",
                                                  "rules": {"max_validity_days": 90}})
    policy = c.get_policy(system, policy.id)
    policy = c.get_policy_by_code(system, "P")
    policies: clm.PolicyPage = c.list_policies(system, {"status": "active"})
    policy = c.update_policy(system, policy.id, {"rules": {"max_validity_days": 30}})
    c.delete_policy(system, policy.id)
    policy = c.restore_policy(system, policy.id)

    root: clm.CertificateAuthority = c.create_root_ca(system, {"subject": {"common_name": "Root"}})
    inter: clm.CertificateAuthority = c.create_intermediate_ca(system, root.certificate.id,
                                                               {"subject": {"common_name": "Inter"}})
    authorities: list[clm.CertificateAuthority] = c.list_authorities(system)
    plan: clm.RolloverPlan = c.plan_ca_rollover(system, inter.certificate.id, {"overlap_days": 30})
    to_reissue: int = plan.leaves_to_reissue

    def rollover_progress(report: clm.RolloverProgress) -> None:
        reissued: int = report.leaves_reissued

    rolled: clm.RolloverReport = c.run_ca_rollover(system, inter.certificate.id, None, 50, progress=rollover_progress)
    rollover: clm.CaRollover = c.ca_rollover_status(system, inter.certificate.id)
    trust_bundle: str | None = rollover.trust_bundle_pem
    outcome: clm.IssuanceOutcome = c.issue_certificate(system, {
        "issuer_id": inter.certificate.id, "validity_days": 30,
        "sans": [{"type": "DNS", "value": "a.example.com"}],
    })
    cert: clm.Certificate | None = outcome.certificate
    request: clm.CertificateRequest | None = outcome.request
    dry: clm.DryRunReport = c.dry_run_issuance(system, {"issuer_id": inter.certificate.id, "validity_days": 30})
    if cert is None:
        return
    renewed: clm.IssuanceOutcome = c.renew_certificate(system, cert.id, {"reuse_key": True})
    private_key: str = c.export_private_key(system, cert.id)
    encrypted_key: str = c.export_private_key(system, cert.id, {"format": "der", "password": "a long passphrase 1",
                                                                "iterations": 10_000})
    exported: clm.CertificateExport = c.export_certificate(system, cert.id, "pkcs7_pem")
    exported_text: str | None = exported.text
    p12: clm.Pkcs12Export = c.export_pkcs12(system, cert.id, "a long passphrase 1",
                                            {"encryption": "legacy", "include_chain": False})
    p12_data: str = p12.data_base64
    bundle: clm.CsrBundle = c.create_csr({"common_name": "csr"}, [{"type": "IP", "value": "10.0.0.1"}], "rsa2048")
    imported: clm.ImportReport = c.import_certificates(system, {"pem": pem})
    skipped: list[clm.SkippedBlock] = imported.skipped
    skipped_labels: list[str] = [block.label for block in skipped]
    signed_serial: str = cert.serial_number_signed
    progressed: list[clm.ImportProgress] = []
    from_file: clm.ImportSummary = c.import_certificates_from_file(system, "bundle.pem", progress=progressed.append)
    from_file_count: int = from_file.certificates_read
    by_serial: clm.CertificatePage = c.search_certificates(system, {"serial_number": signed_serial})
    cert = c.get_certificate(system, cert.id)
    cert = c.get_certificate_by_certificate_id(system, cert.certificate_id)
    text: str = c.get_certificate_pem(system, cert.id)
    found: clm.CertificatePage = c.search_certificates(system, {"expires_before": datetime.datetime.now(datetime.timezone.utc)})
    chain: list[clm.Certificate] = c.certificate_chain(system, cert.id)
    c.delete_certificate(system, cert.id)
    cert = c.restore_certificate(system, cert.id)
    refreshed: clm.StatusRefreshReport = c.refresh_certificate_statuses(system, datetime.datetime.now(datetime.timezone.utc))
    reconciled: clm.ReconcileReport = c.reconcile(system)
    revocation: clm.CertificateRevocation = c.revoke_certificate(system, cert.id, "certificate_hold", "hold")
    cert = c.release_certificate_hold(system, cert.id)
    crl: clm.CrlSummary = c.generate_crl(system, inter.certificate.id, 24)
    crl_size: int = crl.size_bytes
    entry_count: int = crl.entry_count
    crl_kind: clm.CrlKind = crl.kind
    scoped: clm.CrlSummary = c.generate_scoped_crl(system, inter.certificate.id, partition=None, delta=False)
    served: clm.GeneratedCrl = c.latest_crl(system, inter.certificate.id, delta=False)
    ocsp_reply: clm.OcspReply = c.ocsp_respond("MAA=")
    ocsp_status: str = ocsp_reply.response_status
    ocsp_der: str = ocsp_reply.response_der_base64

    def progress(report: clm.RotationProgress) -> None:
        done: int = report.rotated

    rotation: clm.RotationReport = c.rotate_data_key(system, 100, 1, progress=progress)
    rotation = c.rotate_master_key(system, {"master_key": "base64"})
    statuses: list[clm.DataKeyStatus] = c.key_status(system)
    rotations: clm.KeyRotationPage = c.list_key_rotations(system)

    workflow: clm.Workflow = c.create_workflow(system, {
        "workflow_code": "W", "name": "w",
        "definition": {"steps": [{"step_id": 1, "type": "approval", "name": "ok"}]},
    })
    workflow = c.get_workflow(system, workflow.id)
    workflow = c.get_workflow_by_code(system, "W")
    workflows: clm.WorkflowPage = c.list_workflows(system)
    pending: list[clm.PendingApproval] = c.pending_approvals(system)
    view: clm.WorkflowInstanceView = c.decide_approval(system, pending[0].workflow_instance_id, True, "fine")
    view = c.retry_workflow(system, view.instance.id)
    view = c.cancel_workflow(system, view.instance.id)
    expired: int = c.expire_stale_workflows(system, "2030-01-01T00:00:00Z")
    view = c.get_workflow_instance(system, view.instance.id)

    active: clm.ActiveCertificatePage = c.active_certificates(system, {"organization_ids": [org.id]}, {"limit": 5})
    soon: clm.ExpiringCertificatePage = c.expiring_certificates(system, 7)
    people: clm.ActiveUserWithRolesPage = c.active_users_with_roles(system)
    summary: clm.CertificateSummaryPage = c.certificate_summary(system, {"environment": "prod"})

    notes: clm.NotificationPage = c.list_notifications(system, True)
    notes = c.list_user_notifications(system, uid, unread_only=False)
    c.mark_notification_read(system, notes.items[0].id)
    marked: int = c.mark_all_notifications_read(system)
    undelivered: list[clm.Notification] = c.fetch_undelivered_notifications(system, 10)
    marked = c.mark_notifications_delivered(system, [n.id for n in undelivered])
    lifecycle: clm.LifecycleReport = c.run_lifecycle(system)
    retention: clm.AuditRetentionReport = lifecycle.audit_retention
    archived_rows: int = retention.core_archived
    crls_signed: int = lifecycle.crls.generated
    stats: clm.DatabaseStatsReport = c.database_stats(system)
    tables: list[clm.TableStats] = stats.core.tables
    scans: int | None = stats.secure.indexes[0].scans
    pool: clm.PoolStats = stats.core.pool
    maintained: clm.MaintenanceReport = c.maintain(system, vacuum=True, analyze=False)
    steps: list[clm.MaintenanceStep] = maintained.steps

    events: clm.AuditEventPage = c.list_audit_events(system, "core", {"since": created})
    report: clm.ChainReport = c.verify_audit_chain(system, "secure")
    checkpoint: clm.AuditCheckpoint = c.audit_checkpoint(system, "core")
    report = c.verify_audit_chain_against_checkpoint(system, "core", checkpoint)
    report = c.verify_audit_chain_against_checkpoint(system, "core", {
        "version": 1, "log": "audit_log", "sequence_number": 1, "row_hash": "00",
        "created_at": "2026-01-01T00:00:00Z", "key_id": "k", "signature": "00",
    })
    archived: clm.ArchiveReport = c.archive_audit_events(system, "core", 365, "/tmp/archive.jsonl")
    as_dict: dict[str, object] = checkpoint.to_dict()
    c.close()
    closed: bool = c.closed


def errors() -> None:
    try:
        clm.Clm.open(sqlite_dir="./data", master_key_file="./key", create_master_key=True)
    except clm.PolicyViolation as refused:
        rules: list[str] = [v.rule for v in refused.violations]
        field: str | None = refused.field
    except clm.InvalidInput as bad:
        value_error: ValueError = bad
        code: str | None = bad.code
    except clm.NotFound as missing:
        lookup: LookupError = missing
        entity: str | None = missing.entity
    except clm.PermissionDenied as denied:
        permission: PermissionError = denied


async def asynchronous(pem: str) -> None:
    async with await clm.aio.Clm.open(sqlite_dir="./data", master_key_file="./key") as c:
        system: clm.Actor = await c.system_actor()
        root: clm.CertificateAuthority = await c.create_root_ca(system, {"subject": {"common_name": "Root"}})
        outcome: clm.IssuanceOutcome = await c.issue_certificate(system, {
            "issuer_id": root.certificate.id, "validity_days": 30,
        })
        users: clm.UserPage = await c.list_users(system)
        rotation: clm.RotationReport = await c.rotate_data_key(system, progress=lambda r: print(r.rotated))
        await c.close()

"""The access review's attacks (issue 11), run through the Python binding the
way the reviewer ran them, on SQLite and on a fresh PostgreSQL pair."""

import datetime
import os
import shutil
import subprocess
import uuid

import pytest

import clm
from conftest import unique

PASSWORD = "correct horse battery staple"
HOST = os.environ.get("CLM_TEST_PG_HOST", "127.0.0.1")
USER = os.environ.get("CLM_TEST_PG_USER", "postgres")
REFUSED = (clm.PermissionDenied, clm.NotFound)


def _pg(*args):
    return subprocess.run(
        [*args, "-h", HOST, "-U", USER], capture_output=True, text=True, check=False
    )


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        with clm.Clm.open(sqlite_dir=tmp_path / "data", master_key_file=tmp_path / "m.key",
                          create_master_key=True) as c:
            yield c
        return
    if shutil.which("createdb") is None or _pg("psql", "-c", "SELECT 1").returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {HOST} as {USER}")
        pytest.skip(f"PostgreSQL is not reachable at {HOST} as {USER}")
    names = [f"clm_pysec_{kind}_{uuid.uuid4().hex[:10]}" for kind in ("secure", "core")]
    for name in names:
        assert _pg("createdb", name).returncode == 0
    try:
        urls = [f"postgres://{USER}@{HOST}:5432/{name}" for name in names]
        with clm.Clm.open(secure_url=urls[0], core_url=urls[1],
                          master_key_file=tmp_path / "m.key", create_master_key=True) as c:
            yield c
    finally:
        for name in names:
            _pg("dropdb", "--if-exists", "--force", name)


def org(c, code):
    return c.create_organization(c.system_actor(), {"org_code": unique(code), "name": code})


def user(c, prefix, organization=None):
    name = unique(prefix)
    return c.create_user(c.system_actor(), {
        "username": name, "email": f"{name}@example.com", "password": PASSWORD,
        "organization_id": organization.id if organization else None,
    })


def grant(c, who, organization, permissions):
    system = c.system_actor()
    role = c.create_role(system, {
        "role_code": unique("role"), "role_name": "custom", "permissions": permissions,
        "organization_id": organization.id if organization else None,
    })
    c.assign_role(system, who.id, role.id)


def grant_builtin(c, who, code):
    system = c.system_actor()
    c.assign_role(system, who.id, c.get_role_by_code(system, code).id)


def login(c, who):
    return c.validate_session(c.authenticate(who.username, PASSWORD).token)


def test_user_manager_cannot_take_over_the_global_admin(store):
    c = store
    tenant = org(c, "tenant")
    admin = user(c, "admin")
    grant_builtin(c, admin, "ADMIN")
    manager = user(c, "manager", tenant)
    grant(c, manager, tenant, {"users": ["read", "update"],
                               "organizations": ["read", "manage_members"]})
    mgr = login(c, manager)
    with pytest.raises(REFUSED):
        c.add_organization_member(mgr, tenant.id, admin.id, "member")
    with pytest.raises(clm.NotFound) as lookup:
        c.get_user_by_username(mgr, admin.username)
    assert str(admin.id) not in str(lookup.value)
    c.add_organization_member(c.system_actor(), tenant.id, admin.id, "member")
    with pytest.raises(REFUSED):
        c.set_password(mgr, admin.id, "a stolen passphrase 123")
    with pytest.raises(REFUSED):
        c.disable_mfa(mgr, admin.id)
    with pytest.raises(REFUSED):
        c.update_user(mgr, admin.id, {"email": "attacker@example.net"})
    assert c.authenticate(admin.username, PASSWORD).user.id == admin.id


def test_read_only_key_cannot_change_its_owners_credentials(store):
    c = store
    tenant = org(c, "tenant")
    owner = user(c, "owner", tenant)
    grant_builtin(c, owner, "OPERATOR")
    session = login(c, owner)
    created = c.create_api_key(session, {"name": "ro", "scopes": {"certificates": ["read"]}})
    key = c.authenticate_api_key(created.key)
    with pytest.raises(REFUSED):
        c.set_password(key, owner.id, "a stolen passphrase 123")
    with pytest.raises(REFUSED):
        c.change_password(key, PASSWORD, "a stolen passphrase 123")
    with pytest.raises(REFUSED):
        c.begin_mfa_enrollment(key, PASSWORD)
    with pytest.raises(REFUSED):
        c.disable_mfa(key, owner.id, PASSWORD)
    with pytest.raises(REFUSED):
        c.list_api_keys(key)
    with pytest.raises(clm.Authentication):
        c.change_password(session, "not the password at all", "a new passphrase 1234")
    c.authenticate(owner.username, PASSWORD)


def test_org_scoped_role_grants_only_in_its_organization(store):
    c = store
    x, y = org(c, "x"), org(c, "y")
    member = user(c, "both", x)
    c.add_organization_member(c.system_actor(), y.id, member.id, "member")
    grant(c, member, x, {"policies": ["create", "read"]})
    actor = c.actor_for_user(member.id)
    c.create_policy(actor, {"policy_code": unique("px"), "name": "x", "organization_id": x.id})
    with pytest.raises(REFUSED):
        c.create_policy(actor, {"policy_code": unique("py"), "name": "y", "organization_id": y.id})


def test_tenant_cannot_mint_under_a_shared_root_or_export_a_ca_key(store):
    c = store
    system = c.system_actor()
    tenant = org(c, "tenant")
    shared = c.create_root_ca(system, {"subject": {"common_name": unique("Shared Root")}})
    own = c.create_root_ca(system, {"subject": {"common_name": unique("Own Root")},
                                    "organization_id": tenant.id})
    op = user(c, "op", tenant)
    grant(c, op, tenant, {"authorities": ["create", "read"],
                          "certificates": ["create", "read", "export"]})
    actor = c.actor_for_user(op.id)
    with pytest.raises(clm.ClmError):
        c.create_intermediate_ca(actor, shared.certificate.id, {
            "subject": {"common_name": "Tenant Sub CA"}, "organization_id": tenant.id,
        })
    with pytest.raises(REFUSED):
        c.export_private_key(actor, own.certificate.id)


def test_caller_cannot_pick_a_laxer_policy(store):
    c = store
    system = c.system_actor()
    tenant = org(c, "tenant")
    ca = c.create_root_ca(system, {"subject": {"common_name": unique("Root")},
                                   "organization_id": tenant.id})
    c.create_policy(system, {"policy_code": unique("strict"), "name": "strict",
                             "rules": {"max_validity_days": 365, "require_approval": True},
                             "organization_id": tenant.id})
    lax = c.create_policy(system, {"policy_code": unique("lax"), "name": "lax",
                                   "rules": {"max_validity_days": 365}})
    op = user(c, "op", tenant)
    grant(c, op, tenant, {"certificates": ["create", "read"], "authorities": ["read"],
                          "policies": ["read"], "requests": ["create", "read"]})
    outcome = None
    with pytest.raises(clm.ClmError):
        outcome = c.issue_certificate(c.actor_for_user(op.id), {
            "issuer_id": ca.certificate.id, "policy_id": lax.id, "validity_days": 30,
            "subject": {"common_name": "a.example.com"}, "organization_id": tenant.id,
        })
    assert outcome is None


def test_narrow_key_cannot_mint_a_wider_key(store):
    c = store
    x = org(c, "x")
    owner = user(c, "owner", x)
    grant_builtin(c, owner, "OPERATOR")
    expires = (datetime.datetime.now(datetime.timezone.utc)
               + datetime.timedelta(days=1)).isoformat()
    narrow = c.create_api_key(login(c, owner), {
        "name": "narrow", "scopes": {"certificates": ["read"], "api_keys": ["create"]},
        "expires_at": expires, "organization_id": x.id,
    })
    key = c.authenticate_api_key(narrow.key)
    for wider in (
        {"name": "any org", "scopes": {"certificates": ["read"]}, "expires_at": expires},
        {"name": "forever", "scopes": {"certificates": ["read"]}, "organization_id": x.id},
        {"name": "wider", "scopes": {"certificates": ["read", "create"]},
         "expires_at": expires, "organization_id": x.id},
    ):
        with pytest.raises(REFUSED):
            c.create_api_key(key, wider)


def test_suspended_organization_stops_working(store):
    c = store
    system = c.system_actor()
    tenant = org(c, "tenant")
    member = user(c, "member", tenant)
    grant(c, member, tenant, {"organizations": ["read", "update"], "certificates": ["read"]})
    c.set_organization_status(system, tenant.id, "suspended")
    with pytest.raises(REFUSED):
        c.set_organization_status(c.actor_for_user(member.id), tenant.id, "active")
    assert c.get_organization(system, tenant.id).status == "suspended"


def test_checkpoint_detects_a_rewritten_head(store):
    c = store
    system = c.system_actor()
    org(c, "checkpointed")
    checkpoint = c.audit_checkpoint(system, "core")
    assert isinstance(checkpoint, clm.AuditCheckpoint) and checkpoint.log == "audit_log"
    report = c.verify_audit_chain_against_checkpoint(system, "core", checkpoint.to_dict())
    assert report.broken is None and report.rows_checked >= 1
    forged = dict(checkpoint.to_dict(), row_hash="0" * 64)
    with pytest.raises(clm.InvalidInput):
        c.verify_audit_chain_against_checkpoint(system, "core", forged)


def test_every_name_is_checked_against_the_policy(store):
    c = store
    system = c.system_actor()
    ca = c.create_root_ca(system, {"subject": {"common_name": unique("Root")}})
    policy = c.create_policy(system, {
        "policy_code": unique("names"), "name": "names",
        "rules": {"max_validity_days": 90, "allowed_domains": ["example.com"],
                  "allow_subdomains": True},
    })
    base = {"issuer_id": ca.certificate.id, "policy_id": policy.id, "validity_days": 30,
            "subject": {"common_name": "www.example.com"}}
    for name in ({"type": "EMAIL", "value": "ceo@evil.com"},
                 {"type": "URI", "value": "https://login.evil.com/"},
                 {"type": "IP", "value": "8.8.8.8"}):
        with pytest.raises(clm.PolicyViolation):
            c.issue_certificate(system, dict(base, sans=[name]))
    for cn in ("intranet", "evil.com."):
        with pytest.raises(clm.PolicyViolation):
            c.issue_certificate(system, dict(base, subject={"common_name": cn}))


def test_a_compromised_key_does_not_come_back_by_renewal(store):
    c = store
    system = c.system_actor()
    ca = c.create_root_ca(system, {"subject": {"common_name": unique("Root")}})
    cert = c.issue_certificate(system, {
        "issuer_id": ca.certificate.id, "validity_days": 30,
        "subject": {"common_name": "k.example.com"},
    }).certificate
    c.revoke_certificate(system, cert.id, "key_compromise")
    with pytest.raises(clm.ClmError):
        c.renew_certificate(system, cert.id, {"reuse_key": True})

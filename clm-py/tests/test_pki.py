"""The first slice of the service API as a Python user drives it, with every
certificate and CRL checked by the openssl command."""

import subprocess

import pytest

import clm


def issue(handle, pki, cn):
    return handle.issue_certificate(
        pki["system"],
        pki["inter"]["certificate"]["id"],
        90,
        subject={"common_name": cn},
        sans=[{"type": "DNS", "value": cn}, {"type": "IP", "value": "127.0.0.1"}],
        kind="tls_server",
        key_algorithm="ecdsa_p256",
        policy_id=pki["policy"]["id"],
    )


def openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True)


def test_root_intermediate_server_key_revocation_crl(handle, pki, tmp_path):
    root, inter = pki["root"]["certificate"], pki["inter"]["certificate"]
    assert root["is_ca"] and root["certificate_kind"] == "root_ca"
    assert inter["issuer_certificate_id"] == root["id"]

    server = issue(handle, pki, "server.example.com")
    assert server["status"] == "active"
    (tmp_path / "root.pem").write_text(root["certificate_pem"])
    (tmp_path / "intermediate.pem").write_text(inter["certificate_pem"])
    (tmp_path / "server.pem").write_text(server["certificate_pem"])
    verified = openssl(
        "verify", "-CAfile", str(tmp_path / "root.pem"),
        "-untrusted", str(tmp_path / "intermediate.pem"), str(tmp_path / "server.pem"),
    )
    assert verified.returncode == 0, verified.stderr

    key = handle.export_private_key(pki["system"], server["id"])
    assert key.startswith("-----BEGIN PRIVATE KEY-----")
    pub_from_key = openssl("pkey", "-pubout", stdin=key).stdout
    pub_from_cert = openssl("x509", "-noout", "-pubkey", stdin=server["certificate_pem"]).stdout
    assert pub_from_key == pub_from_cert

    other = issue(handle, pki, "old.example.com")
    revocation = handle.revoke_certificate(pki["system"], other["id"], "key_compromise", "test")
    assert revocation["revocation_reason"] == "key_compromise"

    crl = handle.generate_crl(pki["system"], inter["id"])
    assert [e["certificate_id"] for e in crl["entries"]] == [other["id"]]
    (tmp_path / "crl.pem").write_text(crl["pem"])
    checked = openssl(
        "crl", "-in", str(tmp_path / "crl.pem"), "-CAfile", str(tmp_path / "intermediate.pem"),
        "-noout", "-text",
    )
    assert checked.returncode == 0 and "verify OK" in checked.stderr + checked.stdout
    assert other["serial_number"].upper() in checked.stdout.replace(":", "")

    for log in ("secure", "core"):
        report = handle.verify_audit_chain(pki["system"], log)
        assert report["broken"] is None and report["rows_checked"] > 0


def test_users_sessions_and_organizations(handle):
    system = handle.system_actor()
    assert system.kind == "system" and system.user_id is None
    org = handle.create_organization(system, "ACME", "Acme")
    user = handle.create_user(
        system, "alice", "alice@example.com",
        password="correct horse battery staple", organization_id=org["id"],
    )
    assert "password_hash" not in user
    with pytest.raises(clm.Authentication):
        handle.authenticate("alice", "wrong password!")
    login = handle.authenticate("alice", "correct horse battery staple")
    assert login["user"]["id"] == user["id"] and login["token"]
    actor = handle.validate_session(login["token"])
    assert actor.kind == "user" and actor.user_id == user["id"]
    assert actor.organization_ids == [org["id"]]
    with pytest.raises(clm.PermissionDenied) as denied:
        handle.verify_audit_chain(actor, "core")
    assert denied.value.code == "PERMISSION_DENIED"
    with pytest.raises(clm.AlreadyExists):
        handle.create_organization(system, "ACME", "Acme again")


def test_errors_are_one_class_per_code():
    names = [name for _, name in clm.error_codes()]
    for name in names:
        cls = getattr(clm, name)
        assert issubclass(cls, clm.ClmError)
    assert clm.NotFound.code == "NOT_FOUND"
    assert len(set(names)) == len(names) == 12


def test_bad_input_is_a_python_error_never_a_crash(handle, pki):
    system = pki["system"]
    inter_id = pki["inter"]["certificate"]["id"]
    with pytest.raises(TypeError):
        handle.create_user(system, None, "a@example.com")
    with pytest.raises(TypeError):
        handle.create_user("not an actor", "bob", "b@example.com")
    with pytest.raises(TypeError):
        handle.create_root_ca(system, "CN=not a dict")
    with pytest.raises(TypeError):
        handle.issue_certificate(system, inter_id, "ninety")
    with pytest.raises(TypeError):
        handle.create_policy(system, "P2", "P2", 42)
    with pytest.raises(clm.InvalidInput):
        handle.export_private_key(system, "not-a-uuid")
    with pytest.raises(clm.NotFound):
        handle.export_private_key(system, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(clm.InvalidInput):
        handle.revoke_certificate(system, inter_id, "no_such_reason")
    with pytest.raises(clm.InvalidInput):
        handle.create_root_ca(system, {"common_name": "X", "bogus": "field"})
    with pytest.raises(clm.ClmError) as garbage:
        handle.issue_certificate(
            system, inter_id, 30, policy_id=pki["policy"]["id"],
            csr="-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n-----END CERTIFICATE REQUEST-----",
        )
    assert not isinstance(garbage.value, clm.Internal)
    with pytest.raises(clm.InvalidInput):
        handle.verify_audit_chain(system, "neither")


def test_open_errors(tmp_path):
    with pytest.raises(clm.InvalidInput):
        clm.Clm.open(sqlite_dir=str(tmp_path))
    with pytest.raises(clm.Configuration):
        clm.Clm.open(sqlite_dir=str(tmp_path), master_key="not base64 of 32 bytes")
    with pytest.raises(TypeError):
        clm.Clm.open(sqlite_dir=42, master_key="x")


def test_close_then_every_call_raises_closed(tmp_path):
    with clm.Clm.open(
        sqlite_dir=str(tmp_path / "d"), master_key_file=str(tmp_path / "k"), create_master_key=True
    ) as c:
        system = c.system_actor()
    c.close()  # idempotent
    with pytest.raises(clm.Closed):
        c.system_actor()
    with pytest.raises(clm.Closed):
        c.create_organization(system, "ORG", "Org")


def test_parity_with_operations_txt():
    from conftest import REPO

    listed = [
        line.strip()
        for line in (REPO / "bindings" / "operations.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert clm.operations() == listed
    exposed = {name for name in dir(clm.Clm) if not name.startswith("_")}
    assert exposed == set(listed)


def test_stubs_match_the_module():
    import ast
    import pathlib

    stub = ast.parse((pathlib.Path(clm.__file__).parent / "__init__.pyi").read_text())
    classes = {n.name: n for n in stub.body if isinstance(n, ast.ClassDef)}
    for cls in ("Clm", "Actor"):
        stubbed = {
            f.name for f in classes[cls].body
            if isinstance(f, ast.FunctionDef) and not f.name.startswith("_")
        }
        real = {n for n in dir(getattr(clm, cls)) if not n.startswith("_")}
        assert stubbed == real, cls
    for name in clm.__all__:
        assert name in classes or any(
            isinstance(n, (ast.FunctionDef, ast.AnnAssign)) and
            getattr(n, "name", getattr(getattr(n, "target", None), "id", None)) == name
            for n in stub.body
        ), name

"""Bad input gives Python's normal exceptions (TypeError for a wrong Python
type, clm.InvalidInput for a value the core refuses), never a crash."""

import threading
import time

import pytest

import clm


def test_wrong_types_are_type_errors(handle, pki):
    system = pki["system"]
    inter_id = pki["inter"].certificate.id
    with pytest.raises(TypeError):
        handle.create_user(system, None)
    with pytest.raises(TypeError):
        handle.create_user("not an actor", {"username": "bob", "email": "b@example.com"})
    with pytest.raises(TypeError):
        handle.create_root_ca(system, "CN=not a dict")
    with pytest.raises(TypeError):
        handle.generate_crl(system, inter_id, "48")
    with pytest.raises(TypeError):
        handle.generate_crl(system, inter_id, True)
    with pytest.raises(TypeError):
        handle.get_certificate(system, 42)
    with pytest.raises(TypeError):
        handle.decide_approval(system, inter_id, "yes")
    with pytest.raises(TypeError):
        handle.mark_notifications_delivered(system, "not a list")
    with pytest.raises(TypeError):  # not convertible to JSON
        handle.create_root_ca(system, {"subject": {"common_name": object()}})
    with pytest.raises(TypeError):
        handle.create_root_ca(system, {"subject": {1: "x"}})
    with pytest.raises(TypeError):
        handle.create_root_ca(system, {"subject": {"common_name": float("nan")}})


def test_unknown_and_missing_arguments(handle, pki):
    system = pki["system"]
    with pytest.raises(TypeError):
        handle.get_certificate(system, pki["inter"].certificate.id, bogus=1)
    with pytest.raises(TypeError):
        handle.get_certificate(system)
    with pytest.raises(TypeError):
        handle.get_certificate(system, "a", "b")
    # A misspelt field inside an argument object: the core names it.
    with pytest.raises(clm.InvalidInput) as bad:
        handle.create_root_ca(system, {"subject": {"common_name": "X", "bogus": "field"}})
    assert "bogus" in str(bad.value)
    with pytest.raises(clm.InvalidInput):
        handle.issue_certificate(system, {"issuer_id": pki["inter"].certificate.id})


def test_bad_values_are_invalid_input(handle, pki):
    system = pki["system"]
    inter_id = pki["inter"].certificate.id
    with pytest.raises(clm.InvalidInput):
        handle.export_private_key(system, "not-a-uuid")
    with pytest.raises(clm.NotFound):
        handle.export_private_key(system, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(clm.InvalidInput):
        handle.revoke_certificate(system, inter_id, "no_such_reason")
    with pytest.raises(clm.InvalidInput):
        handle.verify_audit_chain(system, "neither")
    with pytest.raises(clm.InvalidInput):
        handle.generate_crl(system, inter_id, -1)
    with pytest.raises(clm.InvalidInput):
        handle.refresh_certificate_statuses(system, "yesterday")


def test_garbage_pem(handle, pki):
    system = pki["system"]
    garbage = "-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n-----END CERTIFICATE REQUEST-----"
    with pytest.raises(clm.ClmError) as csr:
        handle.issue_certificate(system, {
            "issuer_id": pki["inter"].certificate.id, "validity_days": 30, "csr": garbage,
        })
    assert not isinstance(csr.value, clm.Internal)
    for pem in ("not a pem at all", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                "\x00\xff binary"):
        with pytest.raises(clm.ClmError) as imported:
            handle.import_certificates(system, {"pem": pem})
        assert not isinstance(imported.value, clm.Internal)
    with pytest.raises(clm.ClmError):
        handle.import_certificates(system, {"der_base64": "!!!"})
    with pytest.raises(clm.ClmError):
        handle.import_certificates(system, {
            "pem": pki["root"].certificate.certificate_pem, "private_key_pem": "garbage",
        })


def test_closed_handle(tmp_path):
    c = clm.Clm.open(sqlite_dir=tmp_path / "d", master_key_file=tmp_path / "k",
                     create_master_key=True)
    system = c.system_actor()
    c.close()
    for call in (
        lambda: c.list_users(system),
        lambda: c.create_csr(),
        lambda: c.rotate_data_key(system, progress=print),
    ):
        with pytest.raises(clm.Closed) as closed:
            call()
        assert closed.value.code == "CLOSED"
    with pytest.raises(TypeError):
        clm.Clm("not a handle")


def test_cache_ttl_option(tmp_path):
    # 0 turns the issuer and policy caches off; a negative or non-integer
    # value is refused by name before anything opens.
    with clm.Clm.open(sqlite_dir=tmp_path / "d", master_key_file=tmp_path / "k",
                      create_master_key=True, cache_ttl_ms=0) as c:
        assert isinstance(c.list_users(c.system_actor()), clm.Page)
    for bad in (-1, "1s", 1.5):
        with pytest.raises((TypeError, ValueError, clm.InvalidInput)) as refused:
            clm.Clm.open(sqlite_dir=tmp_path / "d", master_key_file=tmp_path / "k",
                         cache_ttl_ms=bad)
        assert "cache_ttl_ms" in str(refused.value)


def test_database_tls_options_are_checked(tmp_path):
    # An unknown sslmode is refused by name, listing the accepted ones.
    with pytest.raises(clm.InvalidInput) as refused:
        clm.Clm.open(secure_url="postgres://u@127.0.0.1:1/a", core_url="postgres://u@127.0.0.1:1/b",
                     master_key_file=tmp_path / "k", create_master_key=True, sslmode="strict")
    assert refused.value.field == "sslmode"
    assert "verify-full" in str(refused.value)
    # TLS settings on SQLite mean the host believes it talks to a server.
    with pytest.raises(clm.Configuration) as sqlite:
        clm.Clm.open(sqlite_dir=tmp_path / "d", master_key_file=tmp_path / "k",
                     create_master_key=True, sslmode="verify-full")
    assert "PostgreSQL" in str(sqlite.value)
    assert not (tmp_path / "d" / "secure.db").exists()


def test_the_gil_is_released_while_waiting(handle):
    ticks = 0
    done = threading.Event()

    def count():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        started = time.monotonic()
        handle.create_csr({"common_name": "rsa.example.com"}, key_algorithm="rsa2048")
        elapsed = time.monotonic() - started
    finally:
        done.set()
        counter.join()
    # The counter ran while the key was generated (a held GIL would stop it).
    assert ticks > elapsed * 100, (ticks, elapsed)

"""clm's log records reach :mod:`logging` (``clm.set_log_level``): the
operations' spans with their outcome, from the runtime's threads too, and
never the password the operations handled."""

import logging
import threading

import pytest

import clm
from conftest import unique


@pytest.fixture()
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG, logger="clm")
    clm.set_log_level(logging.DEBUG)
    yield caplog
    clm.set_log_level(logging.WARNING)


def test_operations_are_logged_with_outcome_and_without_the_password(handle, debug_logs):
    system = handle.system_actor()
    password = f"Py-Log-{unique('pw')}-staple"
    user = handle.create_user(system, {
        "username": unique("pylog"),
        "email": f"{unique('pylog')}@example.com",
        "password": password,
    })
    with pytest.raises(clm.Authentication):
        handle.authenticate(user.username, password + "-wrong")
    login = handle.authenticate(user.username, password)

    records = debug_logs.records
    messages = [r.getMessage() for r in records]
    text = "\n".join(messages)
    assert any(
        r.name == "clm.service.identity"
        and r.levelno == logging.INFO
        and r.getMessage().startswith("create_user{actor=system}: finished outcome=ok duration_ms=")
        for r in records
    ), text
    assert "authenticate{}: finished outcome=authentication failed" in text
    assert any(r.name == "clm.db" and "transaction{" in r.getMessage() for r in records), text
    assert password not in text
    assert login.token not in text


def test_records_from_the_runtime_threads_arrive(handle, pki, debug_logs):
    # Certificates are written by a writer task on the runtime's threads.
    handle.issue_certificate(pki["system"], {
        "issuer_id": pki["inter"].certificate.id,
        "validity_days": 30,
        "subject": {"common_name": "logged.example.com"},
        "sans": [{"type": "DNS", "value": "logged.example.com"}],
        "policy_id": pki["policy"].id,
    })
    batches = [r for r in debug_logs.records if "group commit: writing a batch" in r.getMessage()]
    assert batches and batches[0].name == "clm.service.certificates"
    assert batches[0].thread != threading.get_ident()


def test_the_level_is_checked_and_none_stops(handle, caplog):
    caplog.set_level(5, logger="clm")
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        clm.set_log_level("LOUD")
    with pytest.raises(TypeError):
        clm.set_log_level(2.5)  # type: ignore[arg-type]
    clm.set_log_level(None)
    try:
        handle.create_user(handle.system_actor(), {
            "username": unique("quiet"), "email": f"{unique('quiet')}@example.com",
        })
        assert not [r for r in caplog.records if r.name.startswith("clm")]
        clm.set_log_level("TRACE")
        handle.list_users(handle.system_actor())
        assert any(r.name == "clm.sqlx.query" and r.levelno == 5 for r in caplog.records)
    finally:
        clm.set_log_level(logging.WARNING)


def test_slow_statements_are_warnings_with_their_sql(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="clm")
    # Every statement is "slow" from 0 ms; WARNING is forwarded from import.
    with clm.Clm.open(sqlite_dir=tmp_path / "data", master_key_file=tmp_path / "master.key",
                      create_master_key=True, slow_statement_ms=0) as c:
        c.list_users(c.system_actor())
    slow = [r for r in caplog.records if r.name == "clm.sqlx.query" and r.levelno == logging.WARNING]
    assert slow, [r.getMessage() for r in caplog.records]
    assert any("slow statement" in r.getMessage() and "SELECT" in r.getMessage() for r in slow)

"""open + issue on a fresh PostgreSQL database pair (created and dropped here)."""

import os
import shutil
import subprocess
import uuid

import pytest

import clm

HOST = os.environ.get("CLM_TEST_PG_HOST", "127.0.0.1")
USER = os.environ.get("CLM_TEST_PG_USER", "postgres")


def pg(*args):
    return subprocess.run(
        [*args, "-h", HOST, "-U", USER], capture_output=True, text=True, check=False
    )


@pytest.fixture()
def databases():
    if shutil.which("createdb") is None or pg("psql", "-c", "SELECT 1").returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {HOST} as {USER}")
        pytest.skip(f"PostgreSQL is not reachable at {HOST} as {USER}")
    names = [f"clm_py_{kind}_{uuid.uuid4().hex[:10]}" for kind in ("secure", "core")]
    for name in names:
        created = pg("createdb", name)
        assert created.returncode == 0, created.stderr
    yield [f"postgres://{USER}@{HOST}:5432/{name}" for name in names]
    for name in names:
        pg("dropdb", "--if-exists", "--force", name)


def test_open_and_issue_on_postgres(databases, tmp_path):
    secure_url, core_url = databases
    with clm.Clm.open(secure_url=secure_url, core_url=core_url,
                      master_key_file=tmp_path / "master.key", create_master_key=True) as c:
        system = c.system_actor()
        root = c.create_root_ca(system, {"subject": {"common_name": "PG Root"}})
        cert = c.issue_certificate(system, {
            "issuer_id": root.certificate.id, "validity_days": 30,
            "subject": {"common_name": "pg.example.com"},
            "sans": [{"type": "DNS", "value": "pg.example.com"}],
        }).certificate
        assert cert.issuer_certificate_id == root.certificate.id
        found = c.search_certificates(system, {"san": "pg.example.com"})
        assert [x.id for x in found] == [cert.id]
        assert c.verify_audit_chain(system, "secure").broken is None

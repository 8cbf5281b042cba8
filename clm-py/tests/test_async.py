"""clm.aio: every operation as a coroutine on the shared runtime, with the
records and errors of the synchronous client; many issuances at once."""

import asyncio
import inspect
import threading
import uuid

import pytest

import clm
import clm.aio
from test_postgres import databases  # noqa: F401  (the fixture)

ISSUANCES = 40


def test_every_operation_is_a_coroutine_with_the_sync_signature():
    for op in clm.operations():
        method = getattr(clm.aio.Clm, op["name"])
        assert inspect.iscoroutinefunction(method), op["name"]
        if op["name"] == "close":
            continue
        sync = inspect.signature(getattr(clm.Clm, op["name"]))
        assert inspect.signature(method).parameters.keys() == sync.parameters.keys(), op["name"]


async def _issue_many(c):
    system = await c.system_actor()
    root = await c.create_root_ca(system, {"subject": {"common_name": "Async Root"}})
    issuer = root.certificate.id

    async def issue(n):
        return await c.issue_certificate(system, {
            "issuer_id": issuer, "validity_days": 30,
            "subject": {"common_name": f"host{n}.example.com"},
            "sans": [{"type": "DNS", "value": f"host{n}.example.com"}],
        })

    outcomes = await asyncio.gather(*(issue(n) for n in range(ISSUANCES)))
    certificates = [outcome.certificate for outcome in outcomes]
    assert all(isinstance(cert, clm.Certificate) for cert in certificates)
    assert all(isinstance(cert.id, uuid.UUID) for cert in certificates)
    assert len({cert.serial_number for cert in certificates}) == ISSUANCES
    assert sorted(cert.common_name for cert in certificates) == sorted(
        f"host{n}.example.com" for n in range(ISSUANCES))
    found = await c.search_certificates(system, {"issuer_certificate_id": issuer}, {"limit": 100})
    assert {cert.id for cert in found} == {cert.id for cert in certificates}
    # The same error classes, raised in the awaiting task.
    with pytest.raises(clm.NotFound) as missing:
        await c.get_certificate(system, uuid.UUID(int=0))
    assert missing.value.entity
    with pytest.raises(TypeError):
        await c.get_certificate(system, 42)
    # Concurrent failures and successes do not mix up their futures.
    mixed = await asyncio.gather(
        c.get_certificate(system, certificates[0].id),
        c.get_certificate(system, uuid.UUID(int=1)),
        c.get_certificate(system, certificates[1].id),
        return_exceptions=True,
    )
    assert mixed[0].id == certificates[0].id and mixed[2].id == certificates[1].id
    assert isinstance(mixed[1], clm.NotFound)
    assert (await c.verify_audit_chain(system, "core")).broken is None


def test_gather_many_issuances_on_sqlite(tmp_path):
    async def main():
        async with await clm.aio.Clm.open(
            sqlite_dir=tmp_path / "data", master_key_file=tmp_path / "m.key", create_master_key=True,
        ) as c:
            assert isinstance(c, clm.aio.Clm) and not c.closed
            await _issue_many(c)
            system = await c.system_actor()
        assert c.closed
        with pytest.raises(clm.Closed) as closed:
            await c.list_users(system)
        assert closed.value.code == "CLOSED"

    asyncio.run(main())


def test_gather_many_issuances_on_postgres(databases, tmp_path):  # noqa: F811
    secure_url, core_url = databases

    async def main():
        c = await clm.aio.Clm.open(secure_url=secure_url, core_url=core_url,
                                   master_key_file=tmp_path / "m.key", create_master_key=True)
        try:
            await _issue_many(c)
        finally:
            await c.close()

    asyncio.run(main())


def test_progress_runs_on_the_loop_and_the_loop_keeps_running(tmp_path):
    async def main():
        async with await clm.aio.Clm.open(
            sqlite_dir=tmp_path / "data", master_key_file=tmp_path / "m.key", create_master_key=True,
        ) as c:
            system = await c.system_actor()
            root = await c.create_root_ca(system, {"subject": {"common_name": "Progress Root"}})
            for n in range(3):
                await c.issue_certificate(system, {
                    "issuer_id": root.certificate.id, "validity_days": 30,
                    "subject": {"common_name": f"p{n}.example.com"},
                })
            loop_thread = threading.get_ident()
            reports = []

            def progress(report):
                reports.append((threading.get_ident(), report))

            ticks = 0

            async def tick():
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            ticker = asyncio.create_task(tick())
            report = await c.rotate_data_key(system, batch_size=1, progress=progress)
            ticker.cancel()
            assert isinstance(report, clm.RotationReport)
            assert reports, "no progress was reported"
            assert all(thread == loop_thread for thread, _ in reports)
            assert all(isinstance(r, clm.RotationProgress) for _, r in reports)
            assert ticks > 0  # the loop ran other tasks while clm worked

    asyncio.run(main())


def test_a_cancelled_call_leaves_the_loop_and_handle_usable(tmp_path):
    async def main():
        async with await clm.aio.Clm.open(
            sqlite_dir=tmp_path / "data", master_key_file=tmp_path / "m.key", create_master_key=True,
        ) as c:
            task = asyncio.create_task(c.create_csr({"common_name": "x"}, key_algorithm="rsa2048"))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            bundle = await c.create_csr({"common_name": "y"})
            assert "BEGIN CERTIFICATE REQUEST" in bundle.csr_pem

    asyncio.run(main())


EXIT_SCRIPT = """
import asyncio, sys, clm.aio

async def main():
    async with await clm.aio.Clm.open(sqlite_dir=sys.argv[1], master_key_file=sys.argv[2],
                                      create_master_key=True) as c:
        system = await c.system_actor()
        await asyncio.gather(*(c.create_csr({"common_name": f"x{n}"}) for n in range(20)))
        await c.list_users(system)

asyncio.run(main())
"""


def test_the_interpreter_exits_cleanly_right_after_async_calls(tmp_path):
    # A runtime thread still attached to Python when finalization starts
    # aborts the process ("PyGILState_Release: thread state must be
    # current"); clm's atexit hook keeps them out. Exiting at once after
    # the last completion is where that race was.
    import subprocess
    import sys

    for run in range(8):
        done = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT, str(tmp_path / f"d{run}"), str(tmp_path / f"k{run}")],
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0 and "Fatal" not in done.stderr, done.stderr[-2000:]

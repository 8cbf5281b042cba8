"""The one runtime: threads share it, a forked child gets its own."""

import os
import sys
import threading

import pytest

import clm


def test_threads_call_one_handle_at_once(handle, pki):
    system, inter = pki["system"], pki["inter"].certificate
    errors, serials = [], []

    def work(n):
        try:
            for i in range(3):
                outcome = handle.issue_certificate(system, {
                    "issuer_id": inter.id, "validity_days": 90,
                    "subject": {"common_name": f"t{n}-{i}.example.com"},
                })
                serials.append(outcome.certificate.serial_number)
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(serials)) == 12


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_opens_its_own_clm(handle, tmp_path):
    handle.create_csr({"common_name": "parent"})  # the parent's runtime is running
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            with clm.Clm.open(sqlite_dir=tmp_path / "child", master_key_file=tmp_path / "k",
                              create_master_key=True) as child:
                child.create_root_ca(child.system_actor(), {"subject": {"common_name": "Child"}})
                code = 0
        except BaseException as err:  # noqa: BLE001
            print(f"child failed: {err!r}", file=sys.stderr)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert handle.create_csr({"common_name": "again"}).csr_pem  # the parent still works

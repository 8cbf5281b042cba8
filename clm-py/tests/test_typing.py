"""`mypy --strict` on tests/typing_check.py, which calls every operation
with the types the generated stubs declare."""

import ast
import pathlib
import subprocess
import sys

import clm

CHECK = pathlib.Path(__file__).with_name("typing_check.py")


def test_the_typing_check_calls_every_operation():
    called = {
        node.func.attr for node in ast.walk(ast.parse(CHECK.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    missing = {op["name"] for op in clm.operations()} - called
    assert not missing, f"typing_check.py does not call {sorted(missing)}"


def test_mypy_strict_accepts_the_typing_check():
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-version", "3.10",
         str(CHECK)],
        capture_output=True, text=True, cwd=CHECK.parent,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]


def test_mypy_strict_refuses_a_wrong_call(tmp_path):
    # The stubs do constrain: a wrong argument and a wrong result type fail.
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "import clm\n\n"
        "def f(c: clm.Clm) -> None:\n"
        "    system = c.system_actor()\n"
        "    c.generate_crl(system, 'id', '48')\n"
        "    name: int = c.get_user(system, 'id').username\n"
        "    c.issue_certificate(system, {'validity_days': 30})\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(wrong)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout
    assert done.stdout.count("error:") >= 3, done.stdout

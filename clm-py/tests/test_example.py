"""examples/python/pki.py writes the same verifiable PKI as the Rust example."""

import os
import subprocess
import sys

from conftest import REPO, openssl


def test_pki_example_writes_a_verifiable_pki(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLM_")}

    def run_example():
        done = subprocess.run(
            [sys.executable, str(REPO / "examples" / "python" / "pki.py"), str(out)],
            capture_output=True, text=True, env=env,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    first = run_example()
    assert "creating" in first and (out / "master.key").exists(), first

    def check(*args):
        done = openssl(*args, cwd=out)
        assert done.returncode == 0, f"openssl {args}: {done.stdout}{done.stderr}"
        return done.stdout

    check("verify", "-CAfile", "root.pem", "-untrusted", "intermediate.pem", "server.pem", "client.pem")
    check("crl", "-in", "crl.pem", "-CAfile", "intermediate.pem", "-noout")
    check("verify", "-crl_check", "-CRLfile", "crl.pem", "-CAfile", "root.pem",
          "-untrusted", "intermediate.pem", "server.pem")
    crl = check("crl", "-in", "crl.pem", "-noout", "-text")
    assert "Key Compromise" in crl and crl.count("Serial Number:") == 1, crl
    server = check("x509", "-in", "server.pem", "-noout", "-text")
    assert "DNS:server.example.com" in server and "IP Address:127.0.0.1" in server, server
    client = check("x509", "-in", "client.pem", "-noout", "-text")
    assert "TLS Web Client Authentication" in client, client
    for cert, key in (("server.pem", "server.key"), ("client.pem", "client.key")):
        assert check("x509", "-in", cert, "-noout", "-pubkey") == check("pkey", "-in", key, "-pubout")
        assert (out / key).stat().st_mode & 0o077 == 0, f"{key} is readable by others"
    chain = (out / "chain.pem").read_text()
    assert chain.startswith((out / "server.pem").read_text())
    assert chain.count("BEGIN CERTIFICATE") == 2
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted([
        "root.pem", "intermediate.pem", "server.pem", "server.key", "client.pem",
        "client.key", "chain.pem", "crl.pem", "master.key",
    ])

    # A second run reuses the master key and the database.
    second = run_example()
    assert "using" in second, second

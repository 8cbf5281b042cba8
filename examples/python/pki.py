"""A small internal PKI through the Python binding: a root and an
intermediate CA, a TLS server certificate (DNS server.example.com + IP
127.0.0.1), a TLS client certificate, one revoked certificate, and the
intermediate's CRL. The same as the Rust example (examples/pki.rs).

    python examples/python/pki.py OUT_DIR

Data lives in SQLite under OUT_DIR unless CLM_SECURE_DATABASE_URL and
CLM_CORE_DATABASE_URL are set. With no master key configured
(CLM_MASTER_KEY / CLM_MASTER_KEY_FILE) it uses OUT_DIR/master.key, creating
it on first run. Writes into OUT_DIR: root.pem, intermediate.pem,
server.pem, server.key, client.pem, client.key, chain.pem, crl.pem. Check
them with:

    openssl verify -CAfile OUT_DIR/root.pem -untrusted OUT_DIR/intermediate.pem OUT_DIR/server.pem
    openssl crl -in OUT_DIR/crl.pem -CAfile OUT_DIR/intermediate.pem -noout -text
"""

import os
import pathlib
import sys
import uuid
from typing import Any

import clm


def write(out_dir: pathlib.Path, name: str, contents: str, private: bool = False) -> None:
    path = out_dir / name
    # Private keys are written readable by the owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as file:
        if private:
            os.fchmod(file.fileno(), 0o600)
        file.write(contents)
    print(f"wrote         {path}")


def open_clm(out_dir: pathlib.Path) -> clm.Clm:
    options: dict[str, Any] = {}
    if os.environ.get("CLM_SECURE_DATABASE_URL") and os.environ.get("CLM_CORE_DATABASE_URL"):
        options["secure_url"] = os.environ["CLM_SECURE_DATABASE_URL"]
        options["core_url"] = os.environ["CLM_CORE_DATABASE_URL"]
    else:
        options["sqlite_dir"] = str(out_dir / "data")
    if os.environ.get("CLM_MASTER_KEY"):
        options["master_key"] = os.environ["CLM_MASTER_KEY"]
    elif os.environ.get("CLM_MASTER_KEY_FILE"):
        options["master_key_file"] = os.environ["CLM_MASTER_KEY_FILE"]
    else:
        key_file = out_dir / "master.key"
        print(
            f"no master key configured: {'using' if key_file.exists() else 'creating'} {key_file}"
        )
        options.update(master_key_file=str(key_file), create_master_key=True)
    where = options.get("sqlite_dir") or "PostgreSQL"
    print(f"opening clm:  {where}")
    return clm.Clm.open(**options)


def build(c: clm.Clm, out_dir: pathlib.Path) -> None:
    system = c.system_actor()
    # Runs are repeatable against the same database: names carry a suffix.
    suffix = uuid.uuid4().hex[:8]

    def org(cn: str) -> clm.DistinguishedName:
        return {"common_name": cn, "organization": "Example Inc.", "country": "US"}

    root = c.create_root_ca(system, {
        "subject": org(f"Example Root CA {suffix}"),
        "key_algorithm": "ecdsa_p384",
        "validity_days": 3650,
        "path_len": 1,
        "ca_issuers_urls": ["http://pki.example.com/root.crt"],
        "crl_distribution_points": ["http://pki.example.com/root.crl"],
    })
    print(f"root CA       {root.certificate.subject_dn} ({root.certificate.id})")

    intermediate = c.create_intermediate_ca(system, root.certificate.id, {
        "subject": org(f"Example Issuing CA {suffix}"),
        "key_algorithm": "ecdsa_p256",
        "validity_days": 1825,
        "path_len": 0,
        "crl_distribution_points": ["http://pki.example.com/issuing.crl"],
        "ca_issuers_urls": ["http://pki.example.com/issuing.crt"],
    })
    print(f"intermediate  {intermediate.certificate.subject_dn} ({intermediate.certificate.id})")

    policy = c.create_policy(system, {
        "policy_code": f"INTERNAL-TLS-{suffix}",
        "name": "Internal TLS",
        "rules": {
            "max_validity_days": 397,
            "allowed_domains": ["example.com"],
            "allow_subdomains": True,
            "allowed_ip_ranges": ["127.0.0.0/8"],
            "allowed_algorithms": ["ECDSA", "RSA"],
        },
    })
    print(f"policy        {policy.policy_code} v{policy.version}")

    def issue(
        cn: str, sans: list[clm.SubjectAlternativeName], kind: clm.CertificateKind
    ) -> clm.Certificate:
        outcome = c.issue_certificate(system, {
            "issuer_id": intermediate.certificate.id,
            "policy_id": policy.id,
            "subject": {"common_name": cn},
            "sans": sans,
            "kind": kind,
            "validity_days": 90,
            "key_algorithm": "ecdsa_p256",
        })
        if outcome.certificate is None:
            raise clm.Conflict(f"certificate for {cn} waits for approval")
        return outcome.certificate

    server = issue(
        "server.example.com",
        [{"type": "DNS", "value": "server.example.com"}, {"type": "IP", "value": "127.0.0.1"}],
        "tls_server",
    )
    print(f"server        {server.subject_dn} serial {server.serial_number}")
    client = issue(
        "client.example.com", [{"type": "DNS", "value": "client.example.com"}], "tls_client"
    )
    print(f"client        {client.subject_dn} serial {client.serial_number}")
    retired = issue(
        "retired.example.com", [{"type": "DNS", "value": "retired.example.com"}], "tls_server"
    )
    c.revoke_certificate(system, retired.id, "key_compromise", "pki example: a compromised key")
    print(f"revoked       {retired.subject_dn} serial {retired.serial_number} (key_compromise)")

    generated = c.generate_crl(system, intermediate.certificate.id)
    print(f"CRL           #{generated.crl_number} with {generated.entry_count} entr(ies), {generated.size_bytes} bytes")
    # Generation stores the CRL; serving reads the latest of its scope.
    crl = c.latest_crl(system, intermediate.certificate.id)

    write(out_dir, "root.pem", root.certificate.certificate_pem)
    write(out_dir, "intermediate.pem", intermediate.certificate.certificate_pem)
    write(out_dir, "server.pem", server.certificate_pem)
    write(out_dir, "server.key", c.export_private_key(system, server.id), private=True)
    write(out_dir, "client.pem", client.certificate_pem)
    write(out_dir, "client.key", c.export_private_key(system, client.id), private=True)
    write(out_dir, "chain.pem", server.certificate_pem + intermediate.certificate.certificate_pem)
    write(out_dir, "crl.pem", crl.pem)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python examples/python/pki.py OUT_DIR", file=sys.stderr)
        return 2
    out_dir = pathlib.Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with open_clm(out_dir) as c:
            build(c, out_dir)
    except clm.ClmError as err:
        print(f"pki failed: {err} [{err.code}]", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

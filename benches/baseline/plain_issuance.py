"""The yardstick issue 16 compares clm with: a plain program, one thread,
that generates a P-256 key, signs a leaf with a P-256 CA (pyca/cryptography,
i.e. OpenSSL), seals the key with AES-256-GCM and inserts the certificate and
the sealed key into PostgreSQL in one durable transaction (psycopg). No
policy, no audit chain, no self-check, no OCSP answer, one database, two
tables with three indexes.

    python3 -m venv /tmp/plain && /tmp/plain/bin/pip install cryptography 'psycopg[binary]'
    /tmp/plain/bin/python benches/baseline/plain_issuance.py [COUNT] [SSLMODE]

PGHOST/PGUSER (default 127.0.0.1/postgres) say where; it creates and drops
the database `plain_issuance_bench`.
"""

import datetime
import os
import sys
import time
import uuid

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
SSLMODE = sys.argv[2] if len(sys.argv) > 2 else "prefer"
HOST = os.environ.get("PGHOST", "127.0.0.1")
USER = os.environ.get("PGUSER", "postgres")
DATABASE = "plain_issuance_bench"


def connect(dbname, **kwargs):
    return psycopg.connect(f"host={HOST} user={USER} dbname={dbname} sslmode={SSLMODE}", **kwargs)


def main():
    with connect("postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    try:
        rate = run()
    finally:
        with connect("postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    print(f"plain program, 1 thread, sslmode={SSLMODE}: {COUNT} issuances at {rate:.0f}/s")


def run():
    with connect(DATABASE) as conn:
        conn.execute(
            "CREATE TABLE certs (id uuid PRIMARY KEY, serial text UNIQUE, common_name text,"
            " not_after timestamptz, der bytea, fingerprint bytea UNIQUE)"
        )
        conn.execute(
            "CREATE TABLE keys (id uuid PRIMARY KEY, certificate_id uuid REFERENCES certs(id),"
            " sealed bytea, nonce bytea)"
        )
        conn.commit()
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Plain CA")])
        sealer = AESGCM(os.urandom(32))
        now = datetime.datetime.now(datetime.timezone.utc)
        started = time.perf_counter()
        for n in range(COUNT):
            name = f"host{n}.example.com"
            key = ec.generate_private_key(ec.SECP256R1())
            certificate = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now)
                .not_valid_after(now + datetime.timedelta(days=90))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                .sign(ca_key, hashes.SHA256())
            )
            pkcs8 = key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            nonce = os.urandom(12)
            certificate_id = uuid.uuid4()
            with conn.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO certs VALUES (%s, %s, %s, %s, %s, %s)",
                    (
                        certificate_id,
                        str(certificate.serial_number),
                        name,
                        certificate.not_valid_after_utc,
                        certificate.public_bytes(serialization.Encoding.DER),
                        certificate.fingerprint(hashes.SHA256()),
                    ),
                )
                cursor.execute(
                    "INSERT INTO keys VALUES (%s, %s, %s, %s)",
                    (uuid.uuid4(), certificate_id, sealer.encrypt(nonce, pkcs8, None), nonce),
                )
            conn.commit()
        return COUNT / (time.perf_counter() - started)


if __name__ == "__main__":
    main()

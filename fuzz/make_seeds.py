#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/seeds/<target>/.

Real material made by openssl (a CA hierarchy with RSA, ECDSA and EdDSA keys,
name constraints, CRLs, CSRs, OCSP requests, keys in PKCS#8, PKCS#1 and SEC1),
then the edge cases real certificates carry, made by editing that DER here:
zero, negative, 20-byte and longer serials, UTCTime and GeneralizedTime at
and across their boundaries, notBefore equal to or after notAfter, unknown
critical and duplicate extensions, malformed subjectAltNames, empty names,
versions 1, 2 and 5, non-minimal and indefinite lengths, trailing and
missing bytes, and PEM variants (CRLF, odd widths, headers, bundles).

Nothing here is committed output: scripts/fuzz runs this script when the
seeds are missing. Usage: make_seeds.py [OUTPUT_DIR]. Needs python3 and
openssl only.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "seeds"
WORK = Path(tempfile.mkdtemp(prefix="clm-seeds-"))

counts = {}


def seed(target, name, data):
    """Writes one seed file for `target`."""
    if isinstance(data, str):
        data = data.encode()
    folder = OUT / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    counts[target] = counts.get(target, 0) + 1


def openssl(*args, stdin=None):
    return subprocess.run(
        ["openssl", *args], cwd=WORK, input=stdin, check=True, capture_output=True
    ).stdout


def read(name):
    return (WORK / name).read_bytes()


def write(name, data):
    (WORK / name).write_bytes(data.encode() if isinstance(data, str) else data)


# ------------------------------------------------------------------ DER


def der_len(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def header(data, at=0):
    """(tag, content start, content end) of the element at `at`."""
    tag = data[at]
    first = data[at + 1]
    if first < 0x80:
        return tag, at + 2, at + 2 + first
    count = first & 0x7F
    length = int.from_bytes(data[at + 2 : at + 2 + count], "big")
    start = at + 2 + count
    return tag, start, start + length


def children(content):
    """The elements of a constructed value's content, as whole TLV bytes."""
    out, at = [], 0
    while at < len(content):
        _, start, end = header(content, at)
        out.append(content[at:end])
        at = end
    return out


def content(element):
    _, start, end = header(element)
    return element[start:end]


def pem(label, der, width=64, newline="\n"):
    import base64

    text = base64.b64encode(der).decode()
    lines = [text[i : i + width] for i in range(0, len(text), width)]
    return newline.join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""])


def pem_to_der(text):
    import base64

    body = [l for l in text.decode().splitlines() if l and not l.startswith("-----")]
    return base64.b64decode("".join(body))


def oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    body = bytes([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, body)


def utc(text):
    return tlv(0x17, text.encode())


def generalized(text):
    return tlv(0x18, text.encode())


class Cert:
    """A certificate split into its TBS fields, to edit and re-encode (the
    signature is kept as it was: the parsers read, they do not verify)."""

    def __init__(self, der):
        outer = children(content(der))
        self.alg, self.sig = outer[1], outer[2]
        fields = children(content(outer[0]))
        self.version = fields.pop(0) if fields[0][0] == 0xA0 else None
        self.serial, self.tbs_alg, self.issuer, self.validity, self.subject, self.spki = fields[:6]
        rest = fields[6:]
        self.extensions = None
        self.unique_ids = []
        for field in rest:
            if field[0] == 0xA3:
                self.extensions = children(content(content(field)))
            else:
                self.unique_ids.append(field)

    def copy(self):
        other = Cert.__new__(Cert)
        other.__dict__ = {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}
        return other

    def der(self):
        fields = [self.version] if self.version is not None else []
        fields += [self.serial, self.tbs_alg, self.issuer, self.validity, self.subject, self.spki]
        fields += self.unique_ids
        if self.extensions is not None:
            fields.append(tlv(0xA3, tlv(0x30, b"".join(self.extensions))))
        tbs = tlv(0x30, b"".join(fields))
        return tlv(0x30, tbs + self.alg + self.sig)


def extension(dotted, value, critical=False):
    flag = tlv(0x01, b"\xff") if critical else b""
    return tlv(0x30, oid(dotted) + flag + tlv(0x04, value))


# ------------------------------------------------------------------ real material


def make_pki():
    write(
        "ca.cnf",
        """
[ req ]
distinguished_name = dn
[ dn ]
[ root ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ intermediate ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
nameConstraints = critical, permitted;DNS:example.com, permitted;IP:10.0.0.0/255.0.0.0, permitted;email:example.com, excluded;DNS:bad.example.com, permitted;dirName:nc_dir
[ nc_dir ]
O = Example
[ leaf ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:www.example.com, DNS:*.example.com, IP:10.1.2.3, IP:2001:db8::1, email:ops@example.com, URI:https://example.com/x
authorityInfoAccess = OCSP;URI:http://ocsp.example.com, caIssuers;URI:http://example.com/ca.crt
crlDistributionPoints = URI:http://example.com/crl
certificatePolicies = 2.23.140.1.2.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ ca ]
default_ca = the_ca
[ the_ca ]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 7
""",
    )
    write("index.txt", "")
    write("crlnumber", "1000\n")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "root.key")
    openssl("req", "-x509", "-new", "-key", "root.key", "-subj", "/C=US/O=Example/CN=Seed Root",
            "-days", "3650", "-config", "ca.cnf", "-extensions", "root", "-out", "root.pem")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "int.key")
    openssl("req", "-new", "-key", "int.key", "-subj", "/C=US/O=Example/CN=Seed Intermediate",
            "-config", "ca.cnf", "-out", "int.csr")
    openssl("x509", "-req", "-in", "int.csr", "-CA", "root.pem", "-CAkey", "root.key",
            "-set_serial", "0x1001", "-days", "1825", "-extfile", "ca.cnf",
            "-extensions", "intermediate", "-out", "int.pem")
    leaves = []
    for name, algorithm in [
        ("p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
        ("rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        ("ed25519", ["-algorithm", "ED25519"]),
        ("ed448", ["-algorithm", "ED448"]),
        ("p256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
    ]:
        openssl("genpkey", *algorithm, "-out", f"{name}.key")
        openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/O=Example/CN=www.example.com",
                "-addext", "subjectAltName=DNS:www.example.com,IP:10.1.2.3",
                "-config", "ca.cnf", "-out", f"{name}.csr")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "int.pem", "-CAkey", "int.key",
                "-set_serial", f"0x{random.getrandbits(127):x}", "-days", "90",
                "-extfile", "ca.cnf", "-extensions", "leaf", "-out", f"{name}.pem")
        leaves.append(name)
    # A v1 self-signed certificate: no extensions at all.
    openssl("req", "-new", "-key", "p256.key", "-subj", "/CN=v1.example", "-config", "ca.cnf", "-out", "v1.csr")
    openssl("x509", "-req", "-in", "v1.csr", "-key", "p256.key", "-days", "30", "-out", "v1.pem")
    # A CRL with two entries.
    write("index.txt", f"R\t300101000000Z\t260101000000Z,keyCompromise\t1001\tunknown\t/CN=x\n"
                        f"R\t300101000000Z\t260102000000Z\t00FF\tunknown\t/CN=y\n")
    openssl("ca", "-gencrl", "-config", "ca.cnf", "-keyfile", "int.key", "-cert", "int.pem",
            "-out", "int.crl")
    openssl("crl", "-in", "int.crl", "-outform", "DER", "-out", "int.crl.der")
    return leaves


# ------------------------------------------------------------------ targets


def certificate_seeds(leaves):
    pems = {name: read(f"{name}.pem") for name in ["root", "int", "v1", *leaves]}
    ders = {name: pem_to_der(text) for name, text in pems.items()}
    for name, text in pems.items():
        seed("certificates", f"real-{name}.pem", text)
        seed("certificates", f"real-{name}.der", ders[name])
    seed("certificates", "chain.pem", pems["p384"] + pems["int"] + pems["root"])
    seed("certificates", "chain-with-key.pem", pems["rsa"] + read("rsa.key") + pems["int"])
    seed("certificates", "crl.pem", read("int.crl"))
    seed("certificates", "crl.der", read("int.crl.der"))
    seed("certificates", "csr-as-cert.pem", read("p256.csr"))

    base = Cert(ders["p384"])
    edits = {}

    for label, serial in {
        "serial-zero": b"\x00",
        "serial-negative": bytes.fromhex("fbce996c13"),
        "serial-minus-128": b"\x80",
        "serial-20-bytes": b"\x7f" + b"\xff" * 19,
        "serial-20-bytes-sign": b"\x00" + b"\xff" * 19,
        "serial-21-bytes": b"\x01" + b"\xaa" * 20,
        "serial-32-bytes": b"\x7f" + b"\xff" * 31,
        "serial-non-minimal": b"\x00\x00\x01",
        "serial-empty": b"",
    }.items():
        cert = base.copy()
        cert.serial = tlv(0x02, serial)
        edits[label] = cert.der()

    for label, (before, after) in {
        "utc-1950-2049": (utc("500101000000Z"), utc("491231235959Z")),
        "utc-2049-gen-2050": (utc("491231235959Z"), generalized("20500101000000Z")),
        "gen-1950-9999": (generalized("19500101000000Z"), generalized("99991231235959Z")),
        "gen-before-2050": (generalized("20260101000000Z"), generalized("20270101000000Z")),
        "zero-length-validity": (utc("260101000000Z"), utc("260101000000Z")),
        "inverted-validity": (utc("270101000000Z"), utc("260101000000Z")),
        "utc-no-seconds": (utc("5001010000Z"), utc("4912312359Z")),
        "utc-offset": (utc("500101000000+0100"), utc("491231235959-0100")),
        "gen-fraction": (generalized("20260101000000.5Z"), generalized("20270101000000.123Z")),
        "utc-leap-day": (utc("000229000000Z"), utc("010229000000Z")),
        "utc-leap-second": (utc("991231235960Z"), utc("991231235959Z")),
        "gen-year-0": (generalized("00000101000000Z"), generalized("99991231235959Z")),
        "utc-garbage": (utc("ZZZZZZZZZZZZZ"), utc("")),
    }.items():
        cert = base.copy()
        cert.validity = tlv(0x30, before + after)
        edits[label] = cert.der()

    cert = base.copy()
    cert.extensions = cert.extensions + [extension("1.3.6.1.4.1.99999.1", b"\x05\x00", critical=True)]
    edits["unknown-critical-extension"] = cert.der()
    cert = base.copy()
    cert.extensions = cert.extensions + [cert.extensions[0]]
    edits["duplicate-extension"] = cert.der()
    cert = base.copy()
    cert.extensions = []
    edits["empty-extensions"] = cert.der()
    for label, san in {
        "san-garbage": b"\x30\x03\x82\x05a",
        "san-ip-5-bytes": tlv(0x30, tlv(0x87, b"\x0a\x00\x00\x01\x02")),
        "san-other-name": tlv(0x30, tlv(0xA0, oid("1.3.6.1.4.1.311.20.2.3") + tlv(0xA0, tlv(0x0C, b"upn@example.com")))),
        "san-directory-name": tlv(0x30, tlv(0xA4, tlv(0x30, b""))),
        "san-empty-dns": tlv(0x30, tlv(0x82, b"")),
        "san-utf8-dns": tlv(0x30, tlv(0x82, "bücher.example".encode())),
        "san-empty": tlv(0x30, b""),
    }.items():
        cert = base.copy()
        cert.extensions = [e for e in cert.extensions if oid("2.5.29.17") not in e] + [
            extension("2.5.29.17", san)
        ]
        edits[label] = cert.der()
    for label, value in {
        "basic-constraints-garbage": (extension("2.5.29.19", b"\x30\x03\x01\x01", critical=True)),
        "basic-constraints-pathlen-300": extension("2.5.29.19", tlv(0x30, tlv(0x01, b"\xff") + tlv(0x02, b"\x01\x2c")), critical=True),
        "key-usage-long": extension("2.5.29.15", tlv(0x03, b"\x00\xff\xff\xff"), critical=True),
        "name-constraints-garbage": extension("2.5.29.30", b"\xa0\x02\x30\x00", critical=True),
    }.items():
        cert = base.copy()
        cert.extensions = cert.extensions + [value]
        edits[label] = cert.der()

    cert = base.copy()
    cert.subject = tlv(0x30, b"")
    edits["empty-subject"] = cert.der()
    cert = base.copy()
    cert.issuer = tlv(0x30, b"")
    edits["empty-issuer"] = cert.der()
    cert = base.copy()
    cert.subject = tlv(0x30, tlv(0x31, tlv(0x30, oid("2.5.4.3") + tlv(0x1E, "bmp".encode("utf-16-be")))))
    edits["bmp-string-cn"] = cert.der()
    cert = base.copy()
    cert.subject = tlv(0x30, tlv(0x31, tlv(0x30, oid("2.5.4.3") + tlv(0x0C, b"a,b+c=d\\")) + tlv(0x30, oid("2.5.4.10") + tlv(0x13, b"Multi"))))
    edits["multi-valued-rdn"] = cert.der()
    cert = base.copy()
    cert.version = None
    cert.extensions = None
    edits["version-1"] = cert.der()
    cert = base.copy()
    cert.version = tlv(0xA0, tlv(0x02, b"\x01"))
    edits["version-2"] = cert.der()
    cert = base.copy()
    cert.version = tlv(0xA0, tlv(0x02, b"\x05"))
    edits["version-5"] = cert.der()
    cert = base.copy()
    cert.tbs_alg = tlv(0x30, oid("1.2.840.113549.1.1.11") + b"\x05\x00")
    edits["signature-algorithm-mismatch"] = cert.der()
    cert = base.copy()
    cert.spki = tlv(0x30, tlv(0x30, oid("1.2.3.4")) + tlv(0x03, b"\x00\x01\x02"))
    edits["unknown-key-algorithm"] = cert.der()

    der = ders["p384"]
    _, start, end = header(der)
    edits["non-minimal-outer-length"] = bytes([0x30, 0x84]) + (end - start).to_bytes(4, "big") + der[start:]
    cert = base.copy()
    cert.serial = bytes([0x02, 0x81, 0x01, 0x05])
    edits["non-minimal-serial-length"] = cert.der()
    edits["indefinite-length"] = bytes([0x30, 0x80]) + der[start:] + b"\x00\x00"
    edits["trailing-byte"] = der + b"\x00"
    edits["truncated"] = der[: len(der) // 2]
    edits["huge-length"] = bytes([0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]) + der[start:]
    nested = b""
    for _ in range(300):
        nested = tlv(0x30, nested)
    edits["deep-nesting"] = nested
    for label, der in edits.items():
        seed("certificates", f"edge-{label}.der", der)
        seed("import", f"edge-{label}.der", der)

    text = pems["p384"].decode()
    seed("certificates", "pem-crlf.pem", text.replace("\n", "\r\n"))
    seed("certificates", "pem-width-76.pem", pem("CERTIFICATE", ders["p384"], width=76))
    seed("certificates", "pem-one-line.pem", pem("CERTIFICATE", ders["p384"], width=100000))
    seed("certificates", "pem-no-final-newline.pem", text.rstrip("\n"))
    seed("certificates", "pem-with-text.pem", "Subject: junk\n" + text + "trailing words\n")
    seed("certificates", "pem-x509-label.pem", pem("X509 CERTIFICATE", ders["p384"]))
    seed("certificates", "pem-headers.pem", text.replace("\n", "\nProc-Type: 4,ENCRYPTED\n\n", 1))
    seed("certificates", "pem-bad-base64.pem", text[:80] + "!!!!" + text[80:])
    seed("certificates", "pem-no-end.pem", text.split("-----END")[0])
    seed("certificates", "pem-duplicate.pem", text + text)
    seed("certificates", "pem-empty-block.pem", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    seed("certificates", "pem-edges-bundle.pem", "".join(pem("CERTIFICATE", d) for d in list(edits.values())[:12]))
    for name in ["p384", "rsa", "ed25519", "p256"]:
        seed("import", f"real-{name}.pem", pems[name])
        seed("import", f"real-{name}-with-key.pem", pems[name] + read(f"{name}.key"))
    seed("import", "chain.pem", pems["p384"] + pems["int"] + pems["root"])
    seed("import", "v1.pem", pems["v1"])
    seed("import", "crl.der", read("int.crl.der"))


def csr_seeds(leaves):
    for name in leaves:
        seed("csr", f"real-{name}.pem", read(f"{name}.csr"))
        seed("csr", f"real-{name}.der", pem_to_der(read(f"{name}.csr")))
    variants = {
        "empty-subject": ["-subj", "/", "-addext", "subjectAltName=DNS:only-san.example"],
        "many-sans": ["-subj", "/CN=a", "-addext",
                      "subjectAltName=" + ",".join(f"DNS:h{i}.example.com" for i in range(40))],
        "other-extensions": ["-subj", "/CN=b", "-addext", "basicConstraints=critical,CA:true",
                             "-addext", "keyUsage=keyCertSign", "-addext", "1.3.6.1.4.1.99999.2=DER:0500"],
        "email-uri-ip": ["-subj", "/CN=c/emailAddress=ops@example.com", "-addext",
                         "subjectAltName=email:ops@example.com,URI:https://example.com/,IP:::1"],
        "unicode-subject": ["-utf8", "-subj", "/CN=bücher.example/O=Ünïcödé"],
        "multi-rdn": ["-multivalue-rdn", "-subj", "/CN=d+OU=e/O=f"],
    }
    for label, args in variants.items():
        openssl("req", "-new", "-key", "p256.key", *args, "-config", "ca.cnf", "-out", f"{label}.csr")
        seed("csr", f"{label}.pem", read(f"{label}.csr"))
    der = pem_to_der(read("p256.csr"))
    # A flipped signature byte (verification fails), a trailing byte, a
    # truncation, PEM label variants and two requests in one PEM.
    seed("csr", "bad-signature.der", der[:-1] + bytes([der[-1] ^ 1]))
    seed("csr", "trailing-byte.der", der + b"\x00")
    seed("csr", "truncated.der", der[: len(der) // 2])
    seed("csr", "new-label.pem", pem("NEW CERTIFICATE REQUEST", der))
    seed("csr", "two-requests.pem", pem("CERTIFICATE REQUEST", der) * 2)
    seed("csr", "crlf.pem", pem("CERTIFICATE REQUEST", der, newline="\r\n"))


def key_seeds(leaves):
    for name in leaves + ["root", "int"]:
        key = read(f"{name}.key")
        seed("private_key", f"pkcs8-{name}.pem", key)
        seed("private_key", f"pkcs8-{name}.der", pem_to_der(key))
    openssl("pkey", "-in", "int.key", "-traditional", "-out", "int-pkcs1.pem")
    seed("private_key", "pkcs1-rsa.pem", read("int-pkcs1.pem"))
    seed("private_key", "pkcs1-rsa.der", pem_to_der(read("int-pkcs1.pem")))
    for curve_key in ["root", "p384"]:
        openssl("ec", "-in", f"{curve_key}.key", "-out", f"{curve_key}-sec1.pem")
        seed("private_key", f"sec1-{curve_key}.pem", read(f"{curve_key}-sec1.pem"))
        seed("private_key", f"sec1-{curve_key}.der", pem_to_der(read(f"{curve_key}-sec1.pem")))
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-out", "with-params.pem")
    seed("private_key", "sec1-with-ec-parameters.pem", read("with-params.pem"))
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-param_enc", "explicit", "-out", "explicit.pem")
    seed("private_key", "sec1-explicit-curve.pem", read("explicit.pem"))
    for curve in ["secp521r1", "secp256k1"]:
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{curve}", "-out", f"{curve}.key")
        seed("private_key", f"pkcs8-{curve}.pem", read(f"{curve}.key"))
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "rsa1024.key")
    seed("private_key", "pkcs8-rsa-1024.pem", read("rsa1024.key"))
    openssl("pkcs8", "-topk8", "-in", "p256.key", "-passout", "pass:secret", "-out", "encrypted.pem")
    seed("private_key", "pkcs8-encrypted.pem", read("encrypted.pem"))
    openssl("pkey", "-in", "int.key", "-traditional", "-aes128", "-passout", "pass:secret", "-out", "legacy.pem")
    seed("private_key", "pkcs1-legacy-encrypted.pem", read("legacy.pem"))
    seed("private_key", "two-keys.pem", read("p256.key") + read("p384.key"))
    seed("private_key", "key-and-cert.pem", read("p256.pem") + read("p256.key"))
    seed("private_key", "cert-only.pem", read("p256.pem"))
    der = pem_to_der(read("p256.key"))
    seed("private_key", "pkcs8-trailing-byte.der", der + b"\x00")
    seed("private_key", "pkcs8-truncated.der", der[:-3])
    # PKCS#8 naming RSA around an EC key, and an RSA key with e = 1.
    fields = children(content(der))
    seed("private_key", "pkcs8-wrong-algorithm.der", tlv(0x30, fields[0] + tlv(0x30, oid("1.2.840.113549.1.1.1") + b"\x05\x00") + fields[2]))
    rsa = children(content(pem_to_der(read("int-pkcs1.pem"))))
    rsa[2] = tlv(0x02, b"\x01")
    seed("private_key", "pkcs1-exponent-1.der", tlv(0x30, b"".join(rsa)))


def ocsp_seeds():
    serial = f"0x{random.getrandbits(120):x}"
    requests = {
        "sha1-no-nonce": ["-serial", serial, "-no_nonce"],
        "sha1-nonce": ["-serial", serial],
        "sha256": ["-sha256", "-serial", serial, "-no_nonce"],
        "two-serials": ["-serial", serial, "-serial", "0x01", "-no_nonce"],
        "leaf-cert": ["-cert", "p256.pem"],
        "serial-zero": ["-serial", "0", "-no_nonce"],
        "signed": ["-serial", serial, "-signer", "p256.pem", "-signkey", "p256.key"],
        "serial-one": ["-serial", "0x00", "-no_nonce"],
        "serial-long": ["-serial", "0x" + "7f" * 40, "-no_nonce"],
    }
    for label, args in requests.items():
        openssl("ocsp", "-issuer", "int.pem", *args, "-reqout", f"{label}.ocsp")
        seed("ocsp", f"{label}.der", read(f"{label}.ocsp"))
    der = read("sha1-nonce.ocsp")
    seed("ocsp", "trailing-byte.der", der + b"\x00")
    seed("ocsp", "truncated.der", der[:-4])
    # An OCSP response too (the target also feeds the response reader).
    write("index.txt", "V\t300101000000Z\t\t1001\tunknown\t/CN=x\n")
    openssl("ocsp", "-index", "index.txt", "-rsigner", "int.pem", "-rkey", "int.key", "-CA", "int.pem",
            "-reqin", "two-serials.ocsp", "-respout", "response.der")
    seed("ocsp", "response.der", read("response.der"))


def document_seeds():
    documents = {
        0: [
            {"certificates": ["read", "create"], "audit": ["read"]},
            {"*": ["*"]},
            {"certificates": []},
            {"users": ["read", "read"]},
        ],
        1: [
            {"max_validity_days": 90},
            {"max_validity_days": 398, "min_key_size": 2048, "min_ec_key_size": 256,
             "allowed_domains": ["example.com", "*.example.org"], "allow_subdomains": True,
             "allow_wildcards": False, "allowed_san_types": ["DNS", "IP"],
             "allowed_ip_ranges": ["10.0.0.0/8", "2001:db8::/32"], "renewal_threshold_days": 30,
             "auto_renewal": True, "require_approval": True, "workflow_code": "default",
             "allowed_kinds": ["tls_server"], "allowed_algorithms": ["ECDSA-P256"]},
            {"max_validity_days": 0},
            {"max_validity_days": 36500, "renewal_threshold_days": 36499},
        ],
        2: [
            {"steps": [{"step_id": 1, "type": "approval", "approvers": ["role:administrator"]}]},
            {"steps": [{"step_id": 1, "type": "approval", "name": "security",
                        "approvers": ["role:auditor", "user:0190b5d6-0000-7000-8000-000000000001"],
                        "required_approvals": 2},
                       {"step_id": 2, "type": "issuance", "config": {"any": [1, 2]}}],
             "expires_after_hours": 72},
            {"steps": []},
            {"steps": [{"step_id": 1, "type": "approval", "approvers": ["group:x"]}]},
        ],
        3: [
            [{"type": "DNS", "value": "www.example.com"}, {"type": "IP", "value": "10.0.0.1"},
             {"type": "EMAIL", "value": "ops@Example.COM"}, {"type": "URI", "value": "https://example.com/"}],
            [{"type": "DNS", "value": "*.xn--bcher-kva.example"}],
            [{"type": "DNS", "value": "Bücher.Example."}],
            [{"type": "IP", "value": "2001:db8::1"}],
        ],
        7: [
            [{"type": "DNS", "value": "example.com"}, {"type": "IP", "value": "10.0.0.0/8"},
             {"type": "EMAIL", "value": ".example.com"}, {"type": "URI", "value": "example.com"},
             {"type": "DIRNAME", "value": "O=Example,C=US"}],
            [{"type": "IP", "value": "2001:db8::/32"}],
        ],
    }
    index = 0
    for selector, values in documents.items():
        for value in values:
            seed("documents", f"doc-{selector}-{index}.bin", bytes([selector]) + json.dumps(value).encode())
            index += 1
    texts = {
        4: ["10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0", "10.0.0.1/8", "::/0", "1.2.3.4/33", "1.2.3.4/+8"],
        5: ["CN=www.example.com,O=Example\\, Inc.,C=US", "CN=a+OU=b", "CN=\\#hash,O=\\ lead",
            "CN=trail\\ ", "emailAddress=ops@example.com,CN=x", "CN=\\4c\\c3\\a9", "", "CN=", "O=x,,CN=y"],
        6: ["role:administrator", "user:0190b5d6-0000-7000-8000-000000000001", "role:", "user:x"],
    }
    for selector, values in texts.items():
        for value in values:
            seed("documents", f"text-{selector}-{index}.bin", bytes([selector]) + value.encode())
            index += 1


def byte_seeds():
    rng = random.Random(17)
    for target, count in [("envelope", 8), ("api_call", 16)]:
        for i in range(count):
            seed(target, f"random-{i}.bin", bytes(rng.getrandbits(8) for _ in range(rng.randint(8, 512))))


def main():
    random.seed(17)
    if OUT.exists():
        shutil.rmtree(OUT)
    try:
        leaves = make_pki()
        certificate_seeds(leaves)
        csr_seeds(leaves)
        key_seeds(leaves)
        ocsp_seeds()
        document_seeds()
        byte_seeds()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    for target, count in sorted(counts.items()):
        print(f"{target}: {count} seeds")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes a corpus of odd but real-world certificates and what two
independent parsers read from them (issue 17, "Import what the world has").

    python odd_certificates.py OUTDIR

Each certificate starts as an `openssl req -x509` certificate and most are
then edited at the DER level (a small TLV tree below), and signed again by
`openssl x509 -signkey -preserve_dates` where openssl still reads the edit and
the edit is not of the public key (which -signkey replaces). OUTDIR gets one
`NAME.der` per case and `corpus.json`: for each case what openssl and
pyca/cryptography read (or that they refused it), so that tests/import_world.rs
can hold clm's import to both. Needs `openssl` on PATH and the `cryptography`
package (run it with CLM_TEST_PYTHON).
"""

import base64
import hashlib
import json
import os
import subprocess
import sys
import warnings

from cryptography import x509
from cryptography.x509.oid import NameOID

# --------------------------------------------------------------- DER as a tree


class Node:
    """One TLV: `tag` (one byte; every tag here is a low tag number), and
    either `children` (constructed) or `value` (primitive bytes)."""

    def __init__(self, tag, value=b"", children=None):
        self.tag = tag
        self.value = value
        self.children = children

    @property
    def constructed(self):
        return self.children is not None

    def encode(self):
        body = b"".join(c.encode() for c in self.children) if self.constructed else self.value
        return bytes([self.tag]) + encode_length(len(body)) + body


def encode_length(n):
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def parse(data):
    node, rest = parse_one(data)
    if rest:
        raise ValueError("trailing bytes")
    return node


def parse_one(data):
    tag, first = data[0], data[1]
    if first < 0x80:
        length, at = first, 2
    else:
        count = first & 0x7F
        length, at = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    body, rest = data[at : at + length], data[at + length :]
    if tag & 0x20:
        children = []
        while body:
            child, body = parse_one(body)
            children.append(child)
        return Node(tag, children=children), rest
    return Node(tag, value=body), rest


SEQUENCE, SET, INTEGER, BOOLEAN, OCTET_STRING, OID = 0x30, 0x31, 0x02, 0x01, 0x04, 0x06
UTC_TIME, GENERALIZED_TIME, UTF8, PRINTABLE, T61, BMP = 0x17, 0x18, 0x0C, 0x13, 0x14, 0x1E


def encode_oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        out.extend(reversed(chunk))
    return Node(OID, bytes(out))


class Tbs:
    """Named access to a parsed certificate's TBSCertificate fields."""

    def __init__(self, certificate):
        self.certificate = certificate
        self.node = certificate.children[0]

    def _offset(self):
        return 1 if self.node.children[0].tag == 0xA0 else 0

    def field(self, index):
        return self.node.children[self._offset() + index]

    serial = property(lambda self: self.field(0))
    validity = property(lambda self: self.field(3))
    subject = property(lambda self: self.field(4))
    spki = property(lambda self: self.field(5))

    def extensions(self):
        for child in self.node.children:
            if child.tag == 0xA3:
                return child.children[0]
        return None

    def extension(self, dotted):
        oid = encode_oid(dotted).value
        for extension in self.extensions().children:
            if extension.children[0].value == oid:
                return extension
        raise KeyError(dotted)


# ---------------------------------------------------------------- openssl


def openssl(*args, check=True):
    result = subprocess.run(["openssl", *args], capture_output=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"openssl {args}: {result.stderr.decode(errors='replace')}")
    return result


class Corpus:
    def __init__(self, out):
        self.out = out
        self.cases = []
        self.key_dir = os.path.join(out, "keys")
        os.makedirs(self.key_dir, exist_ok=True)

    def path(self, name, ext):
        return os.path.join(self.key_dir, f"{name}.{ext}")

    def base(self, name, *extra, newkey=("ec", "-pkeyopt", "ec_paramgen_curve:P-256"), subj=None):
        """An openssl self-signed certificate: (DER, key path)."""
        key, cert = self.path(name, "key"), self.path(name, "pem")
        openssl(
            "req", "-x509", "-utf8", "-newkey", newkey[0], *newkey[1:], "-nodes",
            "-subj", subj if subj is not None else f"/CN={name}.odd.example",
            "-days", "30", "-keyout", key, "-out", cert, "-outform", "DER", *extra,
        )
        with open(cert, "rb") as f:
            return f.read(), key

    def resign(self, name, der, key):
        """`der` signed again by `key` with its dates kept; None when openssl
        does not read the edited certificate."""
        edited, signed = self.path(name, "edited.der"), self.path(name, "signed.der")
        with open(edited, "wb") as f:
            f.write(der)
        result = openssl(
            "x509", "-inform", "DER", "-in", edited, "-signkey", key, "-preserve_dates",
            "-outform", "DER", "-out", signed, check=False,
        )
        if result.returncode != 0:
            return None
        with open(signed, "rb") as f:
            return f.read()

    def add(self, name, der, note, resign_key=None):
        if resign_key is not None:
            der = self.resign(name, der, resign_key) or der
        file = f"{name}.der"
        with open(os.path.join(self.out, file), "wb") as f:
            f.write(der)
        self.cases.append({"name": name, "file": file, "note": note,
                           "openssl": read_openssl(os.path.join(self.out, file)),
                           "pyca": read_pyca(der)})

    def edited(self, name, edit, note, *extra, resign=True, **base):
        der, key = self.base(name, *extra, **base)
        certificate = parse(der)
        edit(Tbs(certificate))
        self.add(name, certificate.encode(), note, key if resign else None)


def read_openssl(path):
    result = openssl("x509", "-inform", "DER", "-in", path, "-noout", "-fingerprint", "-sha256",
                     "-serial", "-dates", check=False)
    # A validity openssl cannot read ("Bad time value") is no certificate an
    # inventory can hold either.
    if result.returncode != 0 or b"Bad time value" in result.stdout:
        return None
    # Long values go on over lines ending in a backslash.
    text = result.stdout.decode().replace("\\\n", "")
    lines = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    serial = lines["serial"].lower()
    # openssl prints the magnitude's bytes, after a minus for a negative serial.
    sign, magnitude = ("-", serial[1:]) if serial.startswith("-") else ("", serial)
    return {
        "fingerprint_sha256": lines["sha256 Fingerprint"].replace(":", "").lower(),
        "serial": f"{sign}0x{magnitude.lstrip('0') or '0'}",
    }


def read_pyca(der):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            certificate = x509.load_der_x509_certificate(der)
            read = {
                "fingerprint_sha256": hashlib.sha256(der).hexdigest(),
                "serial": signed_hex(certificate.serial_number),
                "not_before": int(certificate.not_valid_before_utc.timestamp()),
                "not_after": int(certificate.not_valid_after_utc.timestamp()),
                # pyca parses names lazily: a name it refuses is a refusal.
                "subject": certificate.subject.rfc4514_string(NAMES),
                "issuer": certificate.issuer.rfc4514_string(NAMES),
            }
        except Exception as err:  # noqa: BLE001 - any refusal is an answer
            return {"error": f"{type(err).__name__}: {err}"}
        read["sans"] = sans(certificate)
    return read


def signed_hex(value):
    return f"-0x{-value:x}" if value < 0 else f"0x{value:x}"


# clm's short names (crypto/name.rs); pyca's own are the RFC 4514 ones.
NAMES = {
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.SURNAME: "SN",
    NameOID.GIVEN_NAME: "GN",
    NameOID.TITLE: "title",
    NameOID.POSTAL_CODE: "postalCode",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
}


def sans(certificate):
    """The SAN values clm lists (DNS, email, URI, IP), or None when pyca
    refuses the extension (duplicated, malformed)."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    except Exception:  # noqa: BLE001
        return None
    out = []
    for general_name in extension.value:
        if isinstance(general_name, x509.DNSName):
            out.append({"dns": general_name.value})
        elif isinstance(general_name, x509.RFC822Name):
            out.append({"email": general_name.value})
        elif isinstance(general_name, x509.UniformResourceIdentifier):
            out.append({"uri": general_name.value})
        elif isinstance(general_name, x509.IPAddress):
            out.append({"ip": str(general_name.value)})
    return out


# ----------------------------------------------------------------- the cases


def set_time(node, tag, text):
    node.tag, node.value = tag, text.encode()


def make(out):
    c = Corpus(out)
    # Validity: RFC 5280 §4.1.2.5's whole range, and what it forbids.
    c.edited("zero_length_validity", lambda t: (
        set_time(t.validity.children[0], UTC_TIME, "250101000000Z"),
        set_time(t.validity.children[1], UTC_TIME, "250101000000Z")),
        "notBefore == notAfter")
    c.edited("inverted_validity", lambda t: (
        set_time(t.validity.children[0], UTC_TIME, "250201000000Z"),
        set_time(t.validity.children[1], UTC_TIME, "250101000000Z")),
        "notAfter before notBefore")
    c.edited("utctime_1950", lambda t: set_time(t.validity.children[0], UTC_TIME, "500101000000Z"),
             "UTCTime notBefore in 1950")
    c.edited("utctime_1969_to_2049", lambda t: (
        set_time(t.validity.children[0], UTC_TIME, "691231235959Z"),
        set_time(t.validity.children[1], UTC_TIME, "491231235959Z")),
        "UTCTime across 1970, up to 2049")
    c.edited("generalized_before_2050", lambda t: (
        set_time(t.validity.children[0], GENERALIZED_TIME, "20200101000000Z"),
        set_time(t.validity.children[1], GENERALIZED_TIME, "20300101000000Z")),
        "GeneralizedTime for dates RFC 5280 writes as UTCTime")
    c.edited("generalized_1899_to_9999", lambda t: (
        set_time(t.validity.children[0], GENERALIZED_TIME, "18991231235959Z"),
        set_time(t.validity.children[1], GENERALIZED_TIME, "99991231235959Z")),
        "GeneralizedTime before 1900 and the 'no expiry' 9999 date")
    c.edited("utctime_without_seconds", lambda t: set_time(t.validity.children[0], UTC_TIME, "2501010000Z"),
             "UTCTime without seconds (BER, not DER)")
    c.edited("utctime_with_offset", lambda t: set_time(t.validity.children[0], UTC_TIME, "250101000000+0130"),
             "UTCTime with a UTC offset (BER, not DER)")
    c.edited("generalized_fraction", lambda t: set_time(t.validity.children[1], GENERALIZED_TIME, "20500101000000.5Z"),
             "GeneralizedTime with fractional seconds")

    # Serials.
    for name, serial in [("serial_negative", "-0x4316693ed"), ("serial_negative_one", "-1"),
                         ("serial_zero", "0"), ("serial_21_bytes", "0x" + "7f" * 21),
                         ("serial_40_bytes", "0x" + "ab" * 40), ("serial_high_bit", "0x80")]:
        der, _ = c.base(name, "-set_serial", serial)
        c.add(name, der, f"-set_serial {serial}")

    def non_minimal_serial(t):
        t.serial.value = b"\x00" + t.serial.value
    c.edited("serial_non_minimal", non_minimal_serial, "serial INTEGER with a redundant leading 00",
             resign=False)

    # Versions and structure.
    def version_1(t):
        t.node.children = [ch for ch in t.node.children if ch.tag not in (0xA0, 0xA3)]
    c.edited("version_1", version_1, "v1: no version field, no extensions")

    def version_2(t):
        t.node.children[0].children[0].value = b"\x01"
        t.node.children = [ch for ch in t.node.children if ch.tag != 0xA3]
    c.edited("version_2", version_2, "v2 without extensions")

    def explicit_v1(t):
        version_1(t)
        t.node.children.insert(0, Node(0xA0, children=[Node(INTEGER, b"\x00")]))
    c.edited("version_1_explicit", explicit_v1, "v1 written out (DEFAULT encoded)")

    def unique_ids(t):
        at = t.node.children.index(t.spki) + 1
        t.node.children[at:at] = [Node(0x81, b"\x00\x01\x02"), Node(0x82, b"\x00\x03\x04")]
    c.edited("unique_identifiers", unique_ids, "issuerUniqueID and subjectUniqueID")

    # Names.
    def empty_subject(t):
        t.subject.children = []
    c.edited("empty_subject", empty_subject, "empty subject, critical SAN",
             "-addext", "subjectAltName=critical,DNS:empty-subject.example")

    def string_type(tag, encode):
        def edit(t):
            value = t.subject.children[0].children[0].children[1]
            value.tag, value.value = tag, encode(value.value.decode())
        return edit
    c.edited("bmpstring_name", string_type(BMP, lambda s: s.encode("utf-16-be")),
             "CN as BMPString", subj="/CN=Bj\u00f6rk BMP")
    c.edited("t61string_name", string_type(T61, lambda s: s.encode("latin-1")),
             "CN as T61String (Latin-1)", subj="/CN=Caf\u00e9 T61")
    c.edited("t61string_ascii", string_type(T61, lambda s: s.encode("latin-1")),
             "CN as T61String, ASCII only", subj="/CN=t61.odd.example")
    c.edited("universalstring_name", string_type(0x1C, lambda s: s.encode("utf-32-be")),
             "CN as UniversalString", subj="/CN=Universal \u00e5ngstr\u00f6m")
    c.edited("printable_cn", string_type(PRINTABLE, lambda s: s.encode()),
             "CN as PrintableString", subj="/CN=printable.odd.example")
    der, key = c.base("many_attributes", subj="/C=DE/ST=Bayern/L=M\u00fcnchen/O=Odd, Inc./OU=A+B"
                      "/CN=many.odd.example/emailAddress=pki@odd.example/serialNumber=42"
                      "/DC=odd/DC=example/UID=u1/title=Dr/postalCode=80331/GN=Ann/SN=Lee"
                      "/organizationIdentifier=VATDE-1/2.5.4.65=pseudo/1.2.3.4.5=private")
    c.add("many_attributes", der, "every attribute clm names and two it does not")
    der, key = c.base("multi_valued_rdn", "-multivalue-rdn", subj="/O=Odd/CN=multi.odd.example+OU=Ops")
    c.add("multi_valued_rdn", der, "an RDN with two attributes")

    def unsorted_rdn(t):
        rdn = next(r for r in t.subject.children if len(r.children) == 2)
        rdn.children.reverse()
    c.edited("multi_valued_rdn_unsorted", unsorted_rdn, "SET OF not in DER order",
             "-multivalue-rdn", subj="/O=Odd/CN=unsorted.odd.example+OU=Ops", resign=False)
    c.edited("escaped_name", lambda t: None, "characters RFC 4514 escapes",
             subj="/CN=#lead, \"q\" \\+;<>\\\\back =/O= spaced ")

    # Extensions.
    c.add("no_san", c.base("no_san")[0], "no subjectAltName at all")
    c.add("san_kinds", c.base("san_kinds", "-addext",
          "subjectAltName=DNS:a.odd.example,IP:192.0.2.1,IP:2001:db8::1,email:x@odd.example,"
          "URI:https://odd.example/x,RID:1.2.3.4,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:upn@odd,"
          "dirName:dir_sect", "-config", write_dir_section(c))[0],
          "SANs of every kind, some that clm does not list")
    c.add("unknown_critical_extension", c.base("unknown_critical_extension", "-addext",
          "1.2.3.4.5=critical,DER:0500")[0], "an unknown critical extension")

    def duplicate_san(t):
        extensions = t.extensions()
        extensions.children.append(t.extension("2.5.29.17"))
    c.edited("duplicate_extension", duplicate_san, "subjectAltName twice",
             "-addext", "subjectAltName=DNS:dup.odd.example")

    def explicit_false(t):
        extension = t.extension("2.5.29.14")
        extension.children.insert(1, Node(BOOLEAN, b"\x00"))
    c.edited("critical_false_explicit", explicit_false, "critical FALSE written out (DEFAULT encoded)")

    def empty_extensions(t):
        t.extensions().children = []
    c.edited("empty_extensions", empty_extensions, "v3 with an empty extensions SEQUENCE")

    def bad_ip(t):
        san = t.extension("2.5.29.17")
        names = parse(san.children[-1].value)
        names.children.append(Node(0x87, b"\x01\x02\x03\x04\x05"))
        san.children[-1].value = names.encode()
    c.edited("san_bad_ip_length", bad_ip, "a 5-byte IP address SAN",
             "-addext", "subjectAltName=DNS:ip.odd.example")
    c.add("many_sans", c.base("many_sans", "-addext", "subjectAltName=" + ",".join(
        f"DNS:h{i}.odd.example" for i in range(500)))[0], "500 DNS SANs")
    c.add("ca_path_len", c.base("ca_path_len", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign")[0], "a CA with pathLen 0")

    def mismatch(t):
        t.node.children[t._offset() + 1].children[0] = encode_oid("1.2.840.10045.4.3.3")
    c.edited("signature_algorithm_mismatch", mismatch, "TBS and outer signature algorithms differ",
             resign=False)

    # Keys.
    for name, newkey in [
        ("rsa_2048", ("rsa:2048",)), ("rsa_1024", ("rsa:1024",)),
        ("rsa_pss", ("rsa-pss", "-pkeyopt", "rsa_keygen_bits:2048")),
        ("ed25519", ("ed25519",)), ("ed448", ("ed448",)),
        ("p384", ("ec", "-pkeyopt", "ec_paramgen_curve:P-384")),
        ("p521", ("ec", "-pkeyopt", "ec_paramgen_curve:P-521")),
        ("secp256k1", ("ec", "-pkeyopt", "ec_paramgen_curve:secp256k1")),
        ("dsa_2048", ("dsa:" + dsa_parameters(c),)),
    ]:
        c.add(name, c.base(name, newkey=newkey)[0], f"key {' '.join(newkey)}")

    def unknown_key(t):
        t.spki.children[0].children = [encode_oid("1.2.3.4.5.6")]
    c.edited("unknown_key_algorithm", unknown_key, "a key algorithm nobody knows", resign=False)

    # Public odd certificates (tests/corpus/public, see its README), and any
    # other directories named in CLM_CORPUS_EXTRA (a survey of more).
    here = os.path.dirname(os.path.abspath(__file__))
    extra = [os.path.join(here, "public")] + [
        d for d in os.environ.get("CLM_CORPUS_EXTRA", "").split(os.pathsep) if d]
    for directory in extra:
        for file in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
            path = os.path.join(directory, file)
            der = single_der(path) if os.path.isfile(path) else None
            if der is not None:
                c.add("public_" + os.path.splitext(file)[0], der, f"public: {file}")

    with open(os.path.join(out, "corpus.json"), "w") as f:
        json.dump(c.cases, f, indent=1)
    return c.cases


def single_der(path):
    """The DER of a file holding one certificate (DER, or PEM with one
    CERTIFICATE block); None for anything else (chains, keys, CSRs)."""
    with open(path, "rb") as f:
        data = f.read()
    if b"-----BEGIN" not in data:
        return data if data[:1] == b"\x30" else None
    blocks = data.split(b"-----BEGIN CERTIFICATE-----")
    if len(blocks) != 2 or b"-----END CERTIFICATE-----" not in blocks[1]:
        return None
    body = blocks[1].split(b"-----END CERTIFICATE-----")[0]
    if b":" in body:
        return None
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except ValueError:
        return None


def write_dir_section(c):
    path = c.path("dir_sect", "cnf")
    with open(path, "w") as f:
        f.write("[req]\ndistinguished_name=dn\n[dn]\n[dir_sect]\nCN=In A Directory Name\n")
    return path


def dsa_parameters(c):
    path = c.path("dsa", "param")
    openssl("genpkey", "-genparam", "-algorithm", "DSA", "-pkeyopt", "dsa_paramgen_bits:2048",
            "-out", path)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    cases = make(sys.argv[1])
    both = sum(1 for case in cases if case["openssl"] and "error" not in case["pyca"])
    print(f"{len(cases)} certificates, {both} read by both openssl and pyca/cryptography")

import pathlib
import subprocess
import uuid

import pytest

import clm
from clm import _record

REPO = pathlib.Path(__file__).resolve().parents[2]

#: Field sets of every record object the tests received: class -> {fields}.
SEEN_FIELDS: dict[str, set[frozenset[str]]] = {}

_from_json = _record.Record._from_json.__func__


def _recording(cls, data):
    record = _from_json(cls, data)
    SEEN_FIELDS.setdefault(cls.__name__, set()).add(frozenset(vars(record)))
    return record


_record.Record._from_json = classmethod(_recording)
_wrap = _record.wrap


def _recording_wrap(kind, value):
    result = _wrap(kind, value)
    if isinstance(result, clm.Page):
        SEEN_FIELDS.setdefault("Page", set()).add(frozenset(vars(result)))
    return result


_record.wrap = _recording_wrap
clm.wrap = _recording_wrap  # clm/__init__.py calls it by this name


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def handle(tmp_path):
    c = clm.Clm.open(
        sqlite_dir=tmp_path / "data",
        master_key_file=tmp_path / "master.key",
        create_master_key=True,
    )
    yield c
    c.close()


@pytest.fixture()
def pki(handle):
    """A root and an intermediate CA and a policy, made as the system actor."""
    system = handle.system_actor()
    root = handle.create_root_ca(system, {
        "subject": {"common_name": "Py Root", "organization": "Acme", "country": "US"},
        "key_algorithm": "ecdsa_p384",
        "path_len": 1,
    })
    inter = handle.create_intermediate_ca(system, root.certificate.id, {
        "subject": {"common_name": "Py Issuing CA"},
        "path_len": 0,
        "validity_days": 1825,
    })
    policy = handle.create_policy(system, {
        "policy_code": "TLS",
        "name": "TLS",
        "rules": {"max_validity_days": 397, "allowed_domains": ["example.com"], "allow_subdomains": True,
                  "allowed_ip_ranges": ["127.0.0.0/8"]},
    })
    return {"system": system, "root": root, "inter": inter, "policy": policy}


def openssl(*args, stdin=None, cwd=None):
    return subprocess.run(
        ["openssl", *args], input=stdin, capture_output=True, text=True, cwd=cwd
    )

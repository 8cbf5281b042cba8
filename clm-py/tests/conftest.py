import pathlib

import pytest

import clm

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture()
def handle(tmp_path):
    c = clm.Clm.open(
        sqlite_dir=str(tmp_path / "data"),
        master_key_file=str(tmp_path / "master.key"),
        create_master_key=True,
    )
    yield c
    c.close()


@pytest.fixture()
def pki(handle):
    """A root and an intermediate CA and a policy, made as the system actor."""
    system = handle.system_actor()
    root = handle.create_root_ca(
        system,
        {"common_name": "Py Root", "organization": "Acme", "country": "US"},
        key_algorithm="ecdsa_p384",
        path_len=1,
    )
    inter = handle.create_intermediate_ca(
        system,
        root["certificate"]["id"],
        {"common_name": "Py Issuing CA"},
        path_len=0,
        validity_days=1825,
    )
    policy = handle.create_policy(
        system,
        "TLS",
        "TLS",
        {"max_validity_days": 397, "allowed_domains": ["example.com"], "allow_subdomains": True},
    )
    return {"system": system, "root": root, "inter": inter, "policy": policy}

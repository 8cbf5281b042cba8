"""Runs last (file order): the record objects every other test received from
real calls have exactly the fields their class declares in the stub."""

import ast
import pathlib

import clm
from conftest import SEEN_FIELDS

STUB = ast.parse((pathlib.Path(clm.__file__).parent / "__init__.pyi").read_text())
FIELDS = {
    node.name: {
        n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }
    for node in STUB.body
    if isinstance(node, ast.ClassDef)
}


def test_real_records_have_the_stubbed_fields():
    assert SEEN_FIELDS, "run the whole suite: the other tests collect the records"
    for name, shapes in sorted(SEEN_FIELDS.items()):
        for fields in shapes:
            assert set(fields) == FIELDS[name], (
                f"clm.{name}: stub has {sorted(FIELDS[name] - fields)} that real records lack, "
                f"real records have {sorted(fields - FIELDS[name])} that the stub lacks"
            )


def test_the_suite_received_every_record_type():
    stubbed = {
        name for name in FIELDS
        if name not in ("Record",) and isinstance(getattr(clm, name, None), type)
        and issubclass(getattr(clm, name), clm.Record)
    }
    missing = stubbed - set(SEEN_FIELDS)
    assert not missing, f"no test received a {sorted(missing)}"

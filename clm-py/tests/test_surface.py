"""The package against the core's API description and against its stubs."""

import ast
import inspect
import json
import pathlib
import subprocess
import sys
import typing

import clm
from conftest import REPO

API = json.loads((REPO / "bindings" / "api.json").read_text())
STUB = ast.parse((pathlib.Path(clm.__file__).parent / "__init__.pyi").read_text())
STUB_CLASSES = {n.name: n for n in STUB.body if isinstance(n, ast.ClassDef)}


def stub_methods(cls):
    return {
        f.name: f for f in STUB_CLASSES[cls].body
        if isinstance(f, ast.FunctionDef) and (not f.name.startswith("_") or f.name in ("__enter__", "__exit__"))
    }


def stub_fields(cls):
    return [
        n.target.id for n in STUB_CLASSES[cls].body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    ]


def test_every_operation_of_the_core_is_a_method_in_table_order():
    table = clm.operations()
    assert len(table) > 80
    public = {n for n in dir(clm.Clm) if not n.startswith("_")} - {"closed"}
    assert public == {op["name"] for op in table}, "Clm's methods differ from bindings/api.json"
    assert [op["name"] for op in table] == [op["name"] for op in API["operations"]]
    for op in table:
        if op["name"] in ("open", "close"):
            continue
        params = list(inspect.signature(getattr(clm.Clm, op["name"])).parameters.values())[1:]
        if op["needs_actor"]:
            assert params[0].name == "actor", op["name"]
            params = params[1:]
        params = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        assert [p.name for p in params] == [p["name"] for p in op["arguments"]], op["name"]
        for param, spec in zip(params, op["arguments"]):
            if not spec["required"]:
                assert param.default is None, (op["name"], param.name)
            else:
                assert param.default is inspect.Parameter.empty, (op["name"], param.name)


def test_the_generated_files_are_up_to_date():
    """A new operation or record field in the core (bindings/api.json) fails
    here until `python3 bindings/generate.py` is rerun (and the wheel
    rebuilt)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bindings" / "generate.py"), "--check", "--only", "python"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr
    # The installed package is what the repository holds.
    installed = pathlib.Path(clm.__file__).parent
    for name in ("_operations.py", "_types.py", "_errors.py", "__init__.pyi", "aio.pyi",
                 "__init__.py", "_record.py", "aio.py"):
        assert (installed / name).read_text() == (REPO / "clm-py/python/clm" / name).read_text(), name
    assert (installed / "py.typed").exists()


def _stub_signature(function):
    args = function.args
    positional = [a.arg for a in args.posonlyargs + args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + [
        ast.literal_eval(d) if not isinstance(d, ast.Name) else d.id for d in args.defaults
    ]
    has_default = [False] * (len(positional) - len(args.defaults)) + [True] * len(args.defaults)
    result = [(name, "positional", has_default[i], defaults[i] if has_default[i] else None)
              for i, name in enumerate(positional)]
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        result.append((arg.arg, "keyword", default is not None,
                       ast.literal_eval(default) if default is not None else None))
    if args.vararg:
        result.append(("*" + args.vararg.arg, "var", False, None))
    if args.kwarg:
        result.append(("**" + args.kwarg.arg, "var", False, None))
    return result


def _runtime_signature(function, drop_first):
    result = []
    params = list(inspect.signature(function).parameters.values())
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            result.append(("*" + p.name, "var", False, None))
        elif p.kind is p.VAR_KEYWORD:
            result.append(("**" + p.name, "var", False, None))
        else:
            kind = "keyword" if p.kind is p.KEYWORD_ONLY else "positional"
            has = p.default is not p.empty
            result.append((p.name, kind, has, p.default if has else None))
    return result


def test_stub_methods_and_parameters_match_the_runtime():
    methods = stub_methods("Clm")
    runtime = {n for n in dir(clm.Clm) if not n.startswith("_")} | {"__enter__", "__exit__"}
    assert set(methods) == runtime
    for name, function in methods.items():
        attr = inspect.getattr_static(clm.Clm, name)
        if isinstance(attr, property):
            assert any(getattr(d, "id", None) == "property" for d in function.decorator_list), name
            continue
        stub = _stub_signature(function)
        if isinstance(attr, classmethod):
            assert any(getattr(d, "id", None) == "classmethod" for d in function.decorator_list), name
            real = _runtime_signature(attr.__func__, False)
        else:
            real = _runtime_signature(attr, False)
        assert stub == real, name


def test_stub_actor_and_exports_match_the_runtime():
    assert set(stub_methods("Actor")) == {n for n in dir(clm.Actor) if not n.startswith("_")}
    defined = set(STUB_CLASSES)
    for node in STUB.body:
        if isinstance(node, ast.FunctionDef):
            defined.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            defined.add(node.target.id)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
    assert set(clm.__all__) <= defined
    for name in STUB_CLASSES:
        assert hasattr(clm, name), f"the stub declares clm.{name}, the module has none"
    for _, name in clm.error_codes():
        assert name in STUB_CLASSES and issubclass(getattr(clm, name), clm.ClmError)


def test_stubbed_records_and_inputs_match_the_runtime_classes():
    records = [n for n in STUB_CLASSES if n not in ("Record", "Page")
               and isinstance(getattr(clm, n), type) and issubclass(getattr(clm, n), clm.Record)]
    assert "Certificate" in records and "IssuanceOutcome" in records
    for name in records:
        assert tuple(stub_fields(name)) == getattr(clm, name)._fields, name
    assert stub_fields("Page") == list(clm.Page._fields)
    for name in STUB_CLASSES:
        runtime = getattr(clm, name)
        if typing.is_typeddict(runtime):
            assert set(stub_fields(name)) == set(runtime.__annotations__), name

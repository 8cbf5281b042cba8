#!/usr/bin/env python3
"""Generates every binding from the API description the core publishes.

    python3 bindings/generate.py            rewrite the generated files
    python3 bindings/generate.py --check    exit 1, with a diff, when any is stale

`bindings/api.json` is written by the core
(`CLM_REGENERATE=1 cargo test -p clm-core --lib description`); each module
under `bindings/gen/` (python, node, c) turns it into its language's files.
No generator reads Rust source. Adding an operation is one service method
plus one entry in `clm-core/src/api/operations.rs`, then these two commands.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from gen import schema  # noqa: E402

#: The language generators, each a module with
#: `outputs(api: schema.Api) -> dict[pathlib.Path, str]` (paths relative to
#: the repository root).
LANGUAGES = ("python", "node", "c")


def outputs(api: schema.Api, languages: tuple[str, ...]) -> dict[pathlib.Path, str]:
    files: dict[pathlib.Path, str] = {}
    for language in languages:
        module = importlib.import_module(f"gen.{language}")
        files.update(module.outputs(api))
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when a generated file is stale")
    parser.add_argument("--only", choices=LANGUAGES, action="append", help="one language (repeatable)")
    options = parser.parse_args()
    api = schema.load(HERE / "api.json")
    stale = 0
    for relative, text in sorted(outputs(api, tuple(options.only or LANGUAGES)).items()):
        path = ROOT / relative
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        if options.check:
            stale += 1
            diff = difflib.unified_diff(
                current.splitlines(keepends=True), text.splitlines(keepends=True), str(relative), f"{relative} (generated)"
            )
            sys.stdout.writelines(list(diff)[:80])
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {relative}")
    if stale:
        print(f"{stale} generated file(s) are stale: run python3 bindings/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

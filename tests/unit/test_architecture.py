"""The shape of the package, checked: rules ARCHITECTURE.md states, as tests that can fail.

* no module in `dr/` is over 500 lines;
* no two classes in `dr/` share a name;
* registries (backup kinds, step types, DNS providers) are filled by plain imports: nothing
  outside the CLI's lazy command loading imports modules by name.

The AWS seam is checked by test_aws_seam.py, the import direction by test_layering.py.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

DR = Path(__file__).resolve().parents[2] / "dr"
MODULES = sorted(DR.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(DR.parent).as_posix()


def _lines_matching(pattern: str, allowed_prefix: str) -> list[str]:
    found = []
    for path in MODULES:
        if _rel(path).startswith(allowed_prefix):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{_rel(path)}:{number}: {line.strip()}")
    return found


def test_no_module_is_over_500_lines():
    big = {_rel(p): n for p in MODULES if (n := len(p.read_text().splitlines())) > 500}
    assert big == {}


def test_no_two_classes_share_a_name():
    where = defaultdict(list)
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(_rel(path))
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}


def test_registries_are_explicit_imports():
    assert _lines_matching(r"import_module|find_spec|__import__", "dr/cli/") == []

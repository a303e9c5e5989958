"""Imports run one way: nothing below the CLI imports it, and production code imports no fakes."""

from __future__ import annotations

import ast
from pathlib import Path

import dr

ROOT = Path(dr.__file__).parent


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _modules(under: Path = ROOT):
    for path in sorted(under.rglob("*.py")):
        yield path.relative_to(ROOT.parent).as_posix(), _imports(path)


def _hits(imports: set[str], package: str) -> list[str]:
    return sorted(i for i in imports if i == package or i.startswith(package + "."))


def test_nothing_outside_dr_cli_imports_it():
    wrong = {name: _hits(imports, "dr.cli") for name, imports in _modules()
             if not name.startswith("dr/cli/") and name != "dr/__main__.py" and _hits(imports, "dr.cli")}
    assert wrong == {}
    assert _hits(_imports(ROOT / "__main__.py"), "dr.cli") == ["dr.cli"]  # `from dr import cli`


def test_production_code_imports_no_test_support():
    assert {name for name, imports in _modules() if _hits(imports, "tests")} == set()


def test_the_mongo_package_renders_no_text_and_runs_no_fakes():
    for name, imports in _modules(ROOT / "mongo"):
        assert not _hits(imports, "dr.render.mongo") and not _hits(imports, "dr.sandbox"), name
    from dr.mongo.model import MongoReport

    assert not hasattr(MongoReport, "render_text")


def test_only_the_demo_and_sandbox_commands_import_the_simulations():
    users = {name for name, imports in _modules() if _hits(imports, "dr.sandbox")
             and not name.startswith("dr/sandbox/")}
    # dr/aws/seed.py makes the sandbox world's resources: only dr/aws/ may call AWS clients.
    assert users == {"dr/cli/demo.py", "dr/cli/sandbox.py", "dr/aws/seed.py"}

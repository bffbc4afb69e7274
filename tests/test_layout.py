"""The layout rules of docs/architecture.md, checked on the source with `ast` (no imports run).

1. One import name: nothing imports the top-level folders `scorers` or `pipelines` by that name;
   they are `datapruner.scorers` and `datapruner.pipelines`.
2. No module imports another module's private (underscore) names, neither with
   `from m import _x` nor as `m._x` on an imported module.
3. The floors: the engine never imports what stands above it, scorers never import pipelines or
   interfaces, and the interfaces (CLI, HTTP service) call pipelines, not the engine's inner parts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"datapruner": ROOT / "datapruner", "datapruner.scorers": ROOT / "scorers",
                "datapruner.pipelines": ROOT / "pipelines"}
CHECKED_FOLDERS = ("datapruner", "scorers", "pipelines", "tests", "benchmarks", "examples")

# What each floor may import from the project (prefixes of module names).
INTERFACES = ("datapruner.cli", "datapruner.service", "datapruner.integrations")
INTERFACE_MAY_IMPORT = ("datapruner.cli", "datapruner.service", "datapruner.integrations", "datapruner.pipelines", "datapruner.config",
                        "datapruner.errors", "datapruner.registry", "datapruner.progress")
ENGINE_MAY_NOT_IMPORT = ("datapruner.pipelines", "datapruner.scorers", "datapruner.cli", "datapruner.service")
SCORERS_MAY_NOT_IMPORT = ("datapruner.pipelines", "datapruner.cli", "datapruner.service", "datapruner.executors")


def _python_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "data" not in p.relative_to(ROOT).parts[1:2])


def _module_name(path: Path) -> str:
    for package, folder in PACKAGE_DIRS.items():
        if folder in path.parents:
            parts = path.relative_to(folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            return ".".join((package, *parts))
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, imported name or None) for every import statement, nested ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend((node.lineno, node.module, alias.name) for alias in node.names)
    return found


def _private_attribute_uses(path: Path) -> list[tuple[int, str]]:
    """`alias._name` where `alias` is a project module bound by an import in this file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.name.startswith("datapruner") and a.asname}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("datapruner"):
            aliases |= {a.asname or a.name for a in node.names if not a.name[:1].isupper()}
    return [
        (node.lineno, f"{node.value.id}.{node.attr}")
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
        and node.attr.startswith("_") and not node.attr.startswith("__")
    ]


def _private_aliases(path: Path) -> list[tuple[int, str]]:
    """`from datapruner... import name as _name`: a public name hidden behind a private one."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [(node.lineno, f"{node.module}.{a.name}") for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("datapruner")
            for a in node.names if (a.asname or "").startswith("_")]


ALL_FILES = [p for folder in CHECKED_FOLDERS for p in _python_files(folder)]


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_the_layout_is_checked_on_real_files():
    names = {_module_name(p) for p in ALL_FILES}
    assert {"datapruner.pipelines.compress", "datapruner.scorers.mig", "datapruner.cli"} <= names
    assert len(ALL_FILES) > 50


def _top_level_name_imports(p: Path) -> list[str]:
    """Rule 1 on one file: imports of `scorers` / `pipelines` by their folder name."""
    return [f"line {line} imports {module}" for line, module, _ in _imports(p) if module.split(".")[0] in ("scorers", "pipelines")]


def _private_name_imports(p: Path, own: str) -> list[str]:
    """Rule 2 on one file (module name `own`): private names of other project modules."""
    bad = [f"line {line} imports {module}.{name}" for line, module, name in _imports(p)
           if module.startswith("datapruner") and module != own and name and name.startswith("_") and not name.startswith("__")]
    bad.extend(f"line {line} uses {use}" for line, use in _private_attribute_uses(p))
    bad.extend(f"line {line} renames {name} to a private alias" for line, name in _private_aliases(p))
    return bad


def test_one_import_name_for_scorers_and_pipelines():
    bad = [f"{p.relative_to(ROOT)} {v}" for p in ALL_FILES for v in _top_level_name_imports(p)]
    assert not bad, "import these as datapruner.scorers / datapruner.pipelines:\n" + "\n".join(bad)


def test_no_private_names_across_modules():
    bad = [f"{p.relative_to(ROOT)} {v}" for p in ALL_FILES for v in _private_name_imports(p, _module_name(p))]
    assert not bad, "make the name public or keep the code where it is used:\n" + "\n".join(bad)


def _project_imports(paths: list[Path]):
    for p in paths:
        for line, module, name in _imports(p):
            if module.startswith("datapruner"):
                full = f"{module}.{name}" if name and module == "datapruner" else module
                yield p, line, full


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == pre or module.startswith(pre + ".") for pre in prefixes)


def test_the_engine_never_imports_a_floor_above_it():
    engine = [p for p in _python_files("datapruner") if not _under(_module_name(p), INTERFACES)]
    bad = [f"{_where(p, line)} imports {m}" for p, line, m in _project_imports(engine) if _under(m, ENGINE_MAY_NOT_IMPORT)]
    assert not bad, "the engine finds scorers and methods through datapruner.registry:\n" + "\n".join(bad)


def test_scorers_never_import_pipelines_or_interfaces():
    bad = [f"{_where(p, line)} imports {m}" for p, line, m in _project_imports(_python_files("scorers"))
           if _under(m, SCORERS_MAY_NOT_IMPORT)]
    assert not bad, "\n".join(bad)


def test_interfaces_call_pipelines_only():
    interfaces = [p for p in _python_files("datapruner") if _under(_module_name(p), INTERFACES)]
    assert interfaces
    bad = [f"{_where(p, line)} imports {m}" for p, line, m in _project_imports(interfaces)
           if m != "datapruner" and not m.startswith("datapruner.__") and not _under(m, INTERFACE_MAY_IMPORT)]
    assert not bad, "the CLI and the service go through datapruner.pipelines:\n" + "\n".join(bad)


@pytest.mark.parametrize("source,expected", [
    ("from scorers.mig import mig_scores\n", ["line 1 imports scorers.mig"]),
    ("from datapruner.pipelines.compress import _prepare\n", ["line 1 imports datapruner.pipelines.compress._prepare"]),
    ("import datapruner.pipelines.compress as C\nC._finish()\n", ["line 2 uses C._finish"]),
    ("from datapruner.pipelines.train_pruner import load_nq as _load\n",
     ["line 1 renames datapruner.pipelines.train_pruner.load_nq to a private alias"]),
    ("from datapruner.pipelines.compress import compress\nimport datapruner.scorers.mig as M\nM.mig_scores()\n", []),
])
def test_the_checks_catch_a_violation(tmp_path, source, expected):
    path = tmp_path / "bad.py"
    path.write_text(source)
    assert _top_level_name_imports(path) + _private_name_imports(path, "tests.bad") == expected

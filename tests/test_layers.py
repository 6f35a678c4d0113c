"""Imports run down the layers only: CLI -> pipeline -> models -> encoders/diffusion -> io.

Read from the source (every import, including those inside functions), so a late import that
runs back up is caught too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "diffmatte"

# module (dotted, below diffmatte) or package prefix -> packages and modules it must not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "diffusion": ("video", "models", "encoders", "pipeline", "registry", "loading", "training", "cli", "evaluation"),
    "encoders": ("video", "models", "pipeline", "registry", "loading", "training", "cli", "evaluation"),
    "models": ("video", "onnx", "pipeline", "registry", "loading", "training", "cli", "evaluation"),
    "registry": ("video", "pipeline", "models", "encoders", "loading", "training", "cli"),
    "hashing": ("video", "io", "models", "encoders", "diffusion", "pipeline", "registry", "cli"),
    "fusion": ("video", "models", "encoders", "diffusion", "pipeline", "registry", "training", "cli", "data", "evaluation"),
    "laplacian": ("video", "models", "encoders", "diffusion", "pipeline", "registry", "training", "cli", "data", "evaluation",
                  "fusion"),
    "limits": ("video", "io", "models", "encoders", "diffusion", "pipeline", "registry", "training", "cli", "data", "evaluation",
               "runtime", "errors"),
    "suggest": ("video", "io", "models", "encoders", "diffusion", "pipeline", "registry", "training", "cli", "data", "evaluation"),
    "io": ("video", "models", "encoders", "diffusion", "pipeline", "registry", "training", "cli", "data", "evaluation"),
    "pipeline": ("video", "training", "cli", "evaluation", "loading", "session", "server"),
    "session": ("video", "training", "cli", "evaluation", "server"),
    "training": ("cli", "server", "video"),
    "data": ("video", "training", "cli", "evaluation", "pipeline"),
    "evaluation": ("cli", "training"),
    "video": ("cli", "training", "evaluation", "server"),
    # ONNX is a network the pipeline holds, below it: the exporter and the runtime network
    # know the models, never the pipeline that runs them.
    "onnx": ("video", "pipeline", "registry", "loading", "training", "cli", "evaluation", "server", "refine"),
    # the version is a leaf any layer may name
    "_version": ("",),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Modules below diffmatte that ``path`` imports, as dotted names."""
    here = _module_name(path).split(".") if _module_name(path) else []
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.split(".")[0] == "diffmatte":
                target = node.module.split(".")[1:]
            else:
                continue
            names = [[*target, a.name] for a in node.names] if not node.module else [target]
            found.update(".".join(n) for n in names if n)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".", 1)[1] for a in node.names if a.name.startswith("diffmatte."))
    return found


def _matches(name: str, prefix: str) -> bool:
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) or "diffmatte" for p in MODULES])
def test_imports_run_down_the_layers(path: Path) -> None:
    name = _module_name(path)
    imported = _imports(path)
    for owner, banned in FORBIDDEN.items():
        if not _matches(name, owner):
            continue
        back_up = sorted(i for i in imported for b in banned if _matches(i, b))
        assert not back_up, f"diffmatte.{name} imports {back_up}, above it"


def test_no_module_but_the_package_entry_point_runs_the_cli() -> None:
    for path in MODULES:
        if "__main__" in path.read_text() and path.name != "__main__.py":
            tree = ast.parse(path.read_text())
            mains = [n for n in ast.walk(tree) if isinstance(n, ast.Compare) and "__main__" in ast.unparse(n)]
            assert not mains, f"{path.relative_to(PACKAGE)} has a __main__ block; use `python -m diffmatte ...`"


def _module_of(name: str, known: set[str]) -> str | None:
    """The module a dotted import names (``models.configuration.get_preset`` -> ``models.configuration``)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in known:
            return ".".join(parts[:n])
    return None


def test_no_import_circle() -> None:
    """No two modules import each other, directly or around a loop (late imports count).

    A package's face (its __init__.py) is left out: it hands names on lazily, so importing
    a name through it does not make its modules import each other."""
    faces = {_module_name(p) for p in MODULES if p.name == "__init__.py"}
    known = {_module_name(p) for p in MODULES}
    graph = {
        _module_name(p): {m for i in _imports(p) if (m := _module_of(i, known)) and m not in faces}
        for p in MODULES
        if p.name != "__init__.py"
    }
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            loop = path[path.index(node):] + [node]
            raise AssertionError("import circle: " + " -> ".join(f"diffmatte.{m}" for m in loop))
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, path + [node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) or "diffmatte" for p in MODULES])
def test_no_module_over_700_lines(path: Path) -> None:
    """One concept per module: a module that grows past 700 lines holds more than one."""
    lines = len(path.read_text().splitlines())
    assert lines <= 700, f"diffmatte.{_module_name(path)} has {lines} lines; split it"

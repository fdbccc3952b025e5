"""The layering DESIGN.md promises, read from the source: a step package imports `common/` and itself only,
and no module imports one that imports it back.

A step that really runs another is named here: tune runs train trials, whatif
scores its slices as evaluate does and starts the model server for its page,
monitor measures served traffic with validate's distances and, once labels arrive, its quality with evaluate's
accumulators and slices, reading the labels with ingest's readers; predict reads and types a source as ingest
does (rows ingest would reject are never scored).
Any other import between steps means shared code sits in the wrong package.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

COMPONENTS = ROOT / "components"
SHARED = {"common"}
RUNS_ANOTHER = {"tune": {"train"}, "whatif": {"evaluate", "serve"}, "monitor": {"validate", "evaluate", "ingest"},
                "predict": {"ingest"}}


def imported_packages(path: Path) -> set[str]:
    """The `components.<package>` names a module imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module] + ([f"{node.module}.{a.name}" for a in node.names] if node.module == "components"
                                       else [])
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        else:
            continue
        names.update(m.split(".")[1] for m in modules if m.startswith("components.") and m.count(".") >= 1)
    return names


def packages() -> list[Path]:
    return sorted(p for p in COMPONENTS.iterdir() if (p / "__init__.py").exists())


def test_steps_import_only_common_and_what_they_run():
    wrong = []
    for package in packages():
        allowed = {package.name} | SHARED | RUNS_ANOTHER.get(package.name, set())
        if package.name in SHARED:
            allowed = set(SHARED)
        for module in sorted(package.rglob("*.py")):
            for imported in sorted(imported_packages(module) - allowed):
                wrong.append(f"{module.relative_to(ROOT)} imports components.{imported}")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from components.train import run\n    import components.serve.server\n"
                      "from components import evaluate\n")
    assert imported_packages(module) == {"train", "serve", "evaluate"}


def module_graph() -> dict[str, set[str]]:
    """Every module of components/ and pipelines/ -> the project modules it imports (at the top, inside functions
    or for type checking alike). `from package import submodule` is an edge to the submodule alone."""
    paths = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for base in ("components", "pipelines") for p in (ROOT / base).rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]) if node.level else ""
                module = ".".join(part for part in (base, node.module or "") if part)
                submodules = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in paths]
                edges.update(submodules + ([module] if len(submodules) < len(node.names) else []))
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
        graph[name] = {e for e in edges if e in paths and e != name}
    return graph


def test_no_module_imports_one_that_imports_it_back():
    """No import circles, however long: each dependency between two modules goes one way."""
    graph = module_graph()
    circles = []
    for start in sorted(graph):
        seen, stack = set(), [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    circles.append(" -> ".join([*path, start]))
                elif nxt not in seen and nxt > start:  # each circle reported once, from its smallest module
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert not circles, "\n".join(circles)

"""The layering DESIGN.md promises, read from the source: a step package imports `common/` and itself only.

A step that really runs another is named here: tune runs train trials, whatif
scores its slices as evaluate does and starts the model server for its page,
monitor measures served traffic with validate's distances.
Any other import between steps means shared code sits in the wrong package.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

COMPONENTS = ROOT / "components"
SHARED = {"common"}
RUNS_ANOTHER = {"tune": {"train"}, "whatif": {"evaluate", "serve"}, "monitor": {"validate"}}


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

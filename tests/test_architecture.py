"""The package's layers (docs/architecture.md), checked on every import of every module, function-level ones too."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "gest_showcases"

# unit (first path component under gest_showcases/, without .py) -> level. A unit imports only units of a lower
# level (or itself); units of one level do not import each other, except where a fraction orders them.
LEVELS = {
    "errors": 0.0, "files": 0.0, "numerics": 0.1, "tensors": 0.1, "markdown_tables": 0.1, "trainer_utils": 0.2, "model_folders": 0.2,
    "_lazy": 0.0,
    "testing": 4.5,
    "data": 1.0, "synth": 1.1,
    "features": 2.0,
    "metrics": 3.0,
    "selection": 4.0, "generation": 4.0, "baselines": 4.1,
    "pipeline": 5.0, "dataset_requests": 5.1, "report": 5.2, "cards": 5.3, "push": 5.4, "app": 5.5,
    "experiments": 6.0,
    "commands": 7.0, "cli": 7.1, "setup_assets": 7.2,
    # Package plumbing, outside the stack: the public names (lazy) and the Auto registration, which reaches every
    # model unit when transformers' auto modules import.
    "__init__": 9.0, "_auto_registration": 9.0,
}  # fmt: skip


def _unit(path: Path, package: Path = PACKAGE) -> str:
    return path.relative_to(package).parts[0].removesuffix(".py")


def _imported_modules(path: Path, package: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, absolute module name) of every `gest_showcases` import in `path`, relative ones resolved."""
    package_parts = ("gest_showcases", *path.relative_to(package).parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                names = [".".join((*base, node.module)) if node.module else ".".join(base)]
                if not node.module:  # `from . import x`: the submodules themselves
                    names = [f"{names[0]}.{alias.name}" for alias in node.names]
            else:
                names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.startswith("gest_showcases.")]
    return found


def upward_imports(package: Path = PACKAGE) -> list[str]:
    """Every import of a unit of the same or a higher level than the importing module's unit."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        unit = _unit(path, package)
        for line, module in _imported_modules(path, package):
            target = module.split(".")[1]
            if target == unit:
                continue
            if LEVELS[target] >= LEVELS[unit]:
                problems.append(f"{path.relative_to(package)}:{line} ({unit}, {LEVELS[unit]}) imports {module} "
                                f"({target}, {LEVELS[target]})")  # fmt: skip
    return problems


def test_every_unit_has_a_level():
    units = {_unit(path) for path in PACKAGE.rglob("*.py")}
    assert units - set(LEVELS) == set(), "a new unit needs its place in LEVELS and in docs/architecture.md"


def test_no_module_imports_its_layer_or_above():
    assert upward_imports() == []


def test_main_functions_only_in_commands():
    mains = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if _unit(path) not in ("commands", "cli")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.name == "main"
    ]
    assert mains == []


@pytest.mark.parametrize(
    ("source", "importer", "expected"),
    [
        ("from gest_showcases.pipeline import ShowcasePipeline\n", "metrics/x.py", 1),  # upward
        ("def f():\n    from gest_showcases.commands import demo\n", "experiments/x.py", 1),  # inside a function
        ("from ..generation import losses\n", "selection/x.py", 1),  # relative, same level
        ("from . import y\n", "metrics/x.py", 0),  # its own unit
        ("from gest_showcases.data.folder import read_rows\n", "features/x.py", 0),  # downward
    ],
)
def test_the_checker_itself(tmp_path, source, importer, expected):
    for unit in ("metrics", "experiments", "selection", "features"):
        (tmp_path / unit).mkdir()
    (tmp_path / importer).write_text(source, encoding="utf-8")
    assert len(upward_imports(tmp_path)) == expected

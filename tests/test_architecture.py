"""The package's import contract: layers import only downwards, no module cycles, the fast
read-only paths never import torch, and the public API is exactly the curated table."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import hpsearch

PACKAGE = Path(hpsearch.__file__).resolve().parent

# Bottom to top: a module may import its own layer and those below, never one above.
LAYERS = [
    (
        "hpsearch.signals",
        "hpsearch.errors",
        "hpsearch._compat",
        "hpsearch._torch_compat",
        "hpsearch._lazy",
    ),
    ("hpsearch.core",),
    ("hpsearch.study",),
    ("hpsearch.results",),
    ("hpsearch.labs",),
    ("hpsearch.cli",),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def _imports(path: Path) -> set[str]:
    """hpsearch modules imported anywhere in ``path``: at the top, in function bodies and under
    ``if TYPE_CHECKING:`` alike (a type-only import is still a dependency, and a circle through
    one is still a circle)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("hpsearch")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hpsearch"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                # `from hpsearch.study import keys` imports the module hpsearch.study.keys.
                is_module = (PACKAGE.parent / (sub.replace(".", "/") + ".py")).is_file()
                found.add(sub if is_module else node.module)
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__init__.py"}
GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def test_every_module_imports_only_its_own_layer_or_lower() -> None:
    upward = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if target != "hpsearch" and _layer(target) > _layer(module)
    ]
    assert upward == []


def test_no_module_imports_the_package_root() -> None:
    # hpsearch/__init__ re-exports everything lazily: importing it from inside is a cycle.
    assert [m for m, targets in GRAPH.items() if "hpsearch" in targets] == []


def test_there_is_no_import_cycle() -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH.get(module, ())):
            if target not in GRAPH:
                continue
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in GRAPH:
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_contract_test_sees_a_violation() -> None:
    # The checks above are only worth something if they can fail: an upward import is seen.
    assert _layer("hpsearch.core.train") < _layer("hpsearch.study.runner")
    assert "hpsearch.study.keys" in GRAPH["hpsearch.results.report"]
    assert "hpsearch.core.train" in _imports(MODULES["hpsearch.study.objective"])
    # Type-only and in-function imports count: plots imports Comparison for its annotations.
    assert "hpsearch.results.compare" in GRAPH["hpsearch.results.plots"]


def test_the_core_knows_nothing_of_optuna() -> None:
    for module, path in MODULES.items():
        if module.startswith("hpsearch.core."):
            assert "optuna" not in path.read_text(), module


@pytest.mark.parametrize(
    "code",
    [
        "import hpsearch",
        "import hpsearch.cli",
        "import hpsearch; hpsearch.study_points; hpsearch.hypervolume_2d",
        "import hpsearch; hpsearch.Option; hpsearch.TrainConfig; hpsearch.get_setup('two_task')",
        # The commands, on a real study: tests/cli/test_startup.py.
    ],
)
def test_reading_results_and_help_do_not_import_torch(code: str, tmp_path: Path) -> None:
    probe = (
        f"import sys\ntry:\n    {code}\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr


def test_training_does_import_torch(tmp_path: Path) -> None:
    # The probe above can tell: a name that trains does load torch.
    probe = "import sys, hpsearch; hpsearch.train; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr


def test_the_public_api_is_the_curated_table() -> None:
    listed = {name for group in hpsearch._API.values() for name in group}
    assert sorted(listed) == hpsearch.__all__
    for name in hpsearch.__all__:
        assert getattr(hpsearch, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        hpsearch.nothing_here  # noqa: B018
    # What type checkers see is the same set of names.
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    typed = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hpsearch.")
        for alias in node.names
    }
    assert typed == listed


def test_the_api_page_lists_every_public_name() -> None:
    readme = (PACKAGE.parent / "docs" / "api.md").read_text()
    missing = [name for name in hpsearch.__all__ if f"`{name}`" not in readme]
    assert missing == []


def _code_lines(function: ast.FunctionDef, source: str) -> int:
    """Lines of a function's body that hold code: every line from its first statement after
    the docstring to its end, blank lines and comment-only lines left out (so a statement
    continued over five lines counts five)."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if not body:
        return 0
    lines = source.splitlines()[body[0].lineno - 1 : function.end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def test_each_command_is_an_object_that_owns_its_arguments() -> None:
    from hpsearch.cli import COMMANDS, build_parser
    from hpsearch.cli._base import Command
    from hpsearch.cli.labs import Mgs, Playground

    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert list(choices) == [c.name for c in COMMANDS]
    for command in COMMANDS:
        assert issubclass(command, Command) and not getattr(command, "__abstractmethods__", ())
    assert Playground.run is Mgs.run  # the labs share one handler
    source = (PACKAGE / "cli" / "__init__.py").read_text()
    tree = ast.parse(source)
    (top,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "build_parser"]
    assert _code_lines(top, source) <= 25


# The house rule: a function does one job, in at most this many lines of code (docstring,
# comments and blank lines left out), with at most this many functions nested in it.
MAX_CODE_LINES = 60
MAX_NESTED = 3


def _long_functions(source: str, where: str) -> list[str]:
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested = sum(
                isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                for n in ast.walk(node)
                if n is not node
            )
            lines = _code_lines(node, source)  # type: ignore[arg-type]
            if lines > MAX_CODE_LINES or nested > MAX_NESTED:
                found.append(f"{where}:{node.lineno} {node.name}: {lines} lines, {nested} nested")
    return found


def test_no_function_is_long_or_nests_many_functions() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += _long_functions(path.read_text(), str(path.relative_to(PACKAGE)))
    assert found == []


def test_the_function_size_check_sees_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_CODE_LINES + 1))
    nested = "\n".join(f"    def f{i}():\n        pass" for i in range(MAX_NESTED + 1))
    code = f'def long():\n    """Doc."""\n{body}\n\ndef nesting():\n{nested}\n'
    found = _long_functions(code, "x.py")
    assert [f.split()[1] for f in found] == ["long:", "nesting:"]
    short = f"def ok():\n    # a comment\n\n{body.splitlines()[0]}\n"
    assert _long_functions(short, "x.py") == []
    # a statement continued over many lines counts every line it takes
    call = "    f(\n" + "".join(f"        {i},\n" for i in range(MAX_CODE_LINES)) + "    )\n"
    assert len(_long_functions(f"def continued():\n{call}", "x.py")) == 1


def test_run_options_travel_as_one_object() -> None:
    import inspect

    from hpsearch.study.runner import RunOptions, WorkerAssignment, run_study, run_workers

    for function in (run_study, run_workers):
        params = inspect.signature(function).parameters
        assert "options" in params and len(params) - 1 <= 4
    sent = WorkerAssignment("s.toml", RunOptions(n_trials=7, batch=4, threads=1))
    assert WorkerAssignment.from_json(sent.to_json()) == sent

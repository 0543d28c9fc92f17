"""Commands that never train start without torch (a second of start-up, far more under load)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import run_cli
from tests.conftest import SMALL_STUDY

REPO = Path(__file__).resolve().parents[2]

# Runs one command in-process, then reports which heavy modules it imported.
_PROBE = """
import sys
from hpsearch.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in ("torch", "sklearn") if m in sys.modules)
print("EXIT", code, "HEAVY", ",".join(heavy) or "-")
"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("startup")
    values = dict(name="small", dataset="iris", setup="weight_decay", mode="pareto")
    values.update(objective="", sampler='"random"', n_trials=4, seed=0, epochs=2, extra="")
    path = folder / "study.toml"
    path.write_text(SMALL_STUDY.format(**values))
    storage = f"sqlite:///{folder / 's.db'}"
    out = run_cli(
        "run", str(path), "--storage", storage, "--no-progress", "--no-dashboard", cwd=folder
    )
    assert out.returncode == 0, out.stderr
    return storage


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["run", "--help"],
        ["check", "studies/demo.toml"],
        ["check", "studies/two_task-wine-pareto.toml", "studies/playground.toml"],
        ["check", "studies/mgs-digits.toml"],
        ["list"],
        ["show", "{study}"],
        ["compare", "{study}", "--out", "{out}"],
        ["importance", "{study}", "--no-dashboard"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_commands_that_do_not_train_never_import_torch(command, stored, tmp_path) -> None:
    args = [a.format(study="small", out=tmp_path / "cmp") for a in command]
    if args[0] in ("list", "show", "compare", "importance"):
        args += ["--storage", stored]
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], cwd=REPO, capture_output=True, text=True
    )
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("EXIT 0 "), out.stdout[-500:] + out.stderr[-2000:]
    assert "torch" not in last.split("HEAVY", 1)[1], f"{args}: {last}"
    if args[0] in ("--help", "list", "show", "compare") or args[1:2] == ["--help"]:
        assert "sklearn" not in last.split("HEAVY", 1)[1], f"{args}: {last}"


def test_training_still_finds_torch_through_the_lazy_names() -> None:
    # The proxies rebind themselves to the real module on first use.
    code = (
        "import sys; import hpsearch.core.setups as s; assert 'torch' not in sys.modules; "
        "from hpsearch.core.models import ModelSpec, build_mlp; "
        "m = build_mlp(4, 3, ModelSpec(depth=1, width=5, activation='gelu')); "
        "import torch, hpsearch.core.models as models; assert models.nn is torch.nn; "
        "assert s.torch is not torch; "  # setups has not used torch yet: still its proxy
        "print(type(m[1]).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "GELU", out.stderr

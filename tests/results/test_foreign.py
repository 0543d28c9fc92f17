"""Studies hpsearch did not make: plain Optuna studies read, diagnosed and aimed into.

The studies here are built without hpsearch, by ``optuna.create_study`` and ``add_trial``,
from the known outcome of descent on ``L1 + α·L2`` over the front ``(s**p, (1 − s)**p)``:
concave for p < 1 (descent lands on an end: the one the start is nearer where α is close
to the tie, else the cheaper one), convex for p > 1 (the minimizer ``s/(1 − s) =
α**(1/(p − 1))`` is interior). The expected verdicts come from that geometry, not from the
code under test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

import hpsearch
from hpsearch.errors import HpsearchError
from hpsearch.study import keys
from tests.cli.test_cli import run_main

optuna.logging.set_verbosity(optuna.logging.WARNING)
ALPHA = optuna.distributions.FloatDistribution(0.01, 100.0, log=True)


def linear_outcome(p: float, alpha: float, start: float) -> tuple[float, float]:
    """Where descent on L1 + α·L2 over the front (s**p, (1 − s)**p) stops from ``start``."""
    if p > 1:
        ratio = alpha ** (1 / (p - 1))
        s = ratio / (1 + ratio)
    elif 0.6 < alpha < 1 / 0.6:  # near the tie both ends are local minima: the start decides
        s = 0.0 if start < 0.5 else 1.0
    else:
        s = 0.0 if alpha > 1 else 1.0
    return s**p, (1 - s) ** p


def plain_study(
    p: float,
    seed: int,
    n: int = 30,
    directions: tuple[str, str] = ("minimize", "minimize"),
    alpha_name: str = "alpha",
    storage: str | None = None,
    name: str | None = None,
) -> optuna.Study:
    """A two-objective study of ``n`` linear-α runs on the front of exponent ``p``, made by
    Optuna alone (a maximized objective stores −L)."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(
        directions=list(directions), storage=storage, study_name=name or f"plain-p{p}-s{seed}"
    )
    for alpha, start in zip(
        np.exp(rng.uniform(math.log(0.01), math.log(100), n)), rng.uniform(0, 1, n), strict=True
    ):
        l1, l2 = (v + rng.normal(0, 1e-4) for v in linear_outcome(p, float(alpha), start))
        signs = [1 if d == "minimize" else -1 for d in directions]
        study.add_trial(
            optuna.trial.create_trial(
                params={alpha_name: float(alpha)},
                distributions={alpha_name: ALPHA},
                values=[signs[0] * l1, signs[1] * l2],
            )
        )
    return study


@pytest.mark.parametrize("p", [0.3, 0.5, 0.7])
def test_a_plain_study_of_a_concave_front_is_called_concave(p: float) -> None:
    for seed in range(5):
        diagnosis = hpsearch.diagnose(plain_study(p, seed))
        assert diagnosis.concave, (p, seed, diagnosis.verdict)
        assert diagnosis.verdict.startswith("concave: ")
        jump = diagnosis.stretches[0]
        assert jump.kind == "jump"
        # The ends of the hole: the two ends of the front (L1 ≈ 0 and L2 ≈ 0).
        xy = diagnosis.points.xy
        assert xy[jump.start, 0] < 0.01 and xy[jump.end, 1] < 0.01
        assert 0.5 < jump.alpha < 2.0  # the ends tie at α = 1


@pytest.mark.parametrize("p", [1.5, 2.0, 3.0])
def test_a_plain_study_of_a_convex_front_is_never_called_concave(p: float) -> None:
    for seed in range(5):
        diagnosis = hpsearch.diagnose(plain_study(p, seed))
        assert not diagnosis.concave, (p, seed, diagnosis.verdict)
        assert diagnosis.verdict.startswith("convex within tolerance")


def test_a_maximized_objective_is_read_by_its_sign_and_shown_in_its_own() -> None:
    minimized = hpsearch.diagnose(plain_study(0.5, 0))
    maximized = hpsearch.diagnose(plain_study(0.5, 0, directions=("minimize", "maximize")))
    np.testing.assert_allclose(maximized.points.xy, minimized.points.xy)
    assert maximized.points.signs == (1, -1)
    assert [s.kind for s in maximized.stretches] == [s.kind for s in minimized.stretches]
    # Shown as the study stores it: the second objective negative.
    front = maximized.front()
    assert all(point["objective 1"] <= 1e-3 for point in front)
    assert any(point["objective 1"] < -0.9 for point in front)
    assert "objective 1=-" in maximized.verdict


def test_metric_names_name_the_losses() -> None:
    study = plain_study(0.5, 1)
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        study.set_metric_names(["err_a", "err_b"])
    diagnosis = hpsearch.diagnose(study)
    assert diagnosis.points.loss_names == ("err_a", "err_b")
    assert "err_a + α·err_b" in diagnosis.verdict


def test_alpha_is_read_from_the_parameter_named() -> None:
    study = plain_study(0.5, 2, alpha_name="lam")
    unnamed = hpsearch.diagnose(study)
    assert unnamed.points.alpha is None  # no parameter named alpha: no jump test, and it says so
    assert "[no trial has a parameter 'alpha': a jump of linear α cannot be seen" in (
        unnamed.verdict
    )
    named = hpsearch.diagnose(study, alpha="lam")
    assert named.points.alpha is not None and named.stretches[0].kind == "jump"
    assert "no trial has a parameter" not in named.verdict
    with pytest.raises(HpsearchError, match="no trial of .* has a parameter 'lamb'.*'lam'"):
        hpsearch.diagnose(study, alpha="lamb")


def test_a_maximized_loss_is_aimed_at_in_its_minimized_form() -> None:
    study = plain_study(0.5, 0, directions=("minimize", "maximize"))
    verdict = hpsearch.diagnose(study).verdict
    assert "objective 0 + α·(−objective 1)" in verdict
    plan = hpsearch.plan_fill(study, n=3, method="mdmm")
    # The study stores −L2 maximized: its minimized form is L2 itself, in (0, 1).
    assert all(0 < a.value < 1 for a in plan.aims)
    assert "pass −objective 1 as the loss" in plan.minimized_form
    mdmm = hpsearch.MDMM(epsilon=-0.3)  # a negative budget is a budget (a loss may be < 0)
    # 0.5 + max(0, 0 + 10·(−0.2 + 0.3))·(−0.2) = 0.3; λ ← 0.01·(−0.2 + 0.3)
    assert mdmm(torch.tensor(0.5), torch.tensor(-0.2)).item() == pytest.approx(0.3)
    assert mdmm.multiplier.item() == pytest.approx(0.001)
    assert hpsearch.plan_fill(plain_study(0.5, 0), n=2).minimized_form == ""


def test_compare_shows_a_maximized_loss_in_its_sign_and_refuses_mixed_signs() -> None:
    from hpsearch.results.compare import compare_points
    from hpsearch.results.points import points_of_study

    maximized = points_of_study(plain_study(0.5, 0, directions=("minimize", "maximize")))
    comparison = compare_points([(maximized, 1.0)])
    assert "objective 1=-" in comparison.verdicts()[0]
    _, rows = comparison.front_rows()
    assert all(row[3] <= 1e-3 for row in rows)
    with pytest.raises(HpsearchError, match="maximize different losses"):
        compare_points([(maximized, 1.0), (points_of_study(plain_study(0.5, 1)), 1.0)])


def test_numpy_numbers_count_infinite_points_are_off_the_front_and_unread_trials_are_said() -> None:
    study = optuna.create_study(direction="minimize")
    for i, alpha in enumerate((0.1, 0.5, 1.0, 5.0)):
        study.add_trial(
            optuna.trial.create_trial(
                params={"alpha": alpha},
                distributions={"alpha": ALPHA},
                value=1.0,
                user_attrs={"a": np.float32(i), "b": np.float64(4 - i)},
            )
        )
    study.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={"other": 1}))
    diagnosis = hpsearch.diagnose(study, losses=("a", "b"))
    assert len(diagnosis.points.numbers) == 4
    assert "[4 of 5 complete trials read: the others record no pair of losses]" in (
        diagnosis.verdict
    )
    two = plain_study(2.0, 0)
    two.add_trial(optuna.trial.create_trial(params={"alpha": 1.0}, distributions={"alpha": ALPHA},
                                            values=[math.inf, 0.0]))  # fmt: skip
    points = hpsearch.diagnose(two).points
    assert not points.pareto[~np.isfinite(points.xy).all(1)].any()


def test_a_single_linear_study_says_what_its_zero_gap_cannot_measure() -> None:
    diagnosis = hpsearch.diagnose(plain_study(0.5, 0))
    assert diagnosis.analysis.gap_pct < 1.0
    assert "its gap cannot show what it misses" in diagnosis.verdict
    convex = hpsearch.diagnose(plain_study(2.0, 0))
    assert "cannot show" not in convex.verdict


def test_convergence_is_said_to_be_assumed_without_history() -> None:
    assert "[convergence assumed" in hpsearch.diagnose(plain_study(0.5, 0)).verdict


def _single_objective_study(with_reports: bool) -> optuna.Study:
    """One objective (L1 + α·L2), both losses in user attributes; the runs between the ends
    reported values still falling fast when they stopped."""
    study = optuna.create_study(direction="minimize")
    rng = np.random.default_rng(3)
    for number, alpha in enumerate(np.exp(np.linspace(math.log(0.011), math.log(90), 30))):
        l1, l2 = linear_outcome(0.5, float(alpha), rng.uniform())
        moving = number in (14, 15)  # α ≈ 1: two runs stopped half-way, between the ends
        if moving:
            l1, l2 = 0.6, 0.6
        reports = {}
        if with_reports:
            final = l1 + alpha * l2
            reports = {e: final + (0.5 * (20 - e) if moving else 0.0) for e in range(1, 21)}
        study.add_trial(
            optuna.trial.create_trial(
                params={"alpha": float(alpha)},
                distributions={"alpha": ALPHA},
                value=l1 + alpha * l2,
                user_attrs={"a": l1, "b": l2},
                intermediate_values=reports,
            )
        )
    return study


def test_one_objective_reads_the_losses_named_and_intermediate_values_tell_moving_runs() -> None:
    with pytest.raises(HpsearchError, match="one objective and records no pair of losses"):
        hpsearch.diagnose(_single_objective_study(False))
    assumed = hpsearch.diagnose(_single_objective_study(False), losses=("a", "b"))
    assert assumed.points.convergence == "assumed"
    assert assumed.concave  # the two runs half-way count as converged points above the hull
    reported = hpsearch.diagnose(_single_objective_study(True), losses=("a", "b"))
    assert reported.points.convergence == "intermediate values"
    assert int((~reported.analysis.converged).sum()) == 2
    with pytest.raises(HpsearchError, match="records numbers in both user attributes 'a' and 'x'"):
        hpsearch.diagnose(_single_objective_study(False), losses=("a", "x"))


def test_three_objectives_are_refused_unless_two_are_picked() -> None:
    study = optuna.create_study(directions=["minimize"] * 3)
    for alpha in (0.1, 1.0, 10.0):
        study.add_trial(
            optuna.trial.create_trial(
                params={"alpha": alpha}, distributions={"alpha": ALPHA}, values=[alpha, 1, 2]
            )
        )
    with pytest.raises(HpsearchError, match="has 3 objectives; pick the two .* --objectives"):
        hpsearch.diagnose(study)
    picked = hpsearch.diagnose(study, objectives=(0, 2))
    assert picked.points.loss_names == ("objective 0", "objective 2")
    np.testing.assert_allclose(picked.points.loss2, [2, 2, 2])
    with pytest.raises(HpsearchError, match="give two different ones"):
        hpsearch.diagnose(study, objectives=(1, 1))


def test_no_complete_trial_is_said_only_when_true() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    with pytest.raises(HpsearchError, match="has no complete trial yet"):
        hpsearch.diagnose(study)
    hpsearch.diagnose(plain_study(0.5, 0))  # complete trials without hpsearch's attributes


# --- the command line on a stored plain study -------------------------------------------------


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("plain")
    url = f"sqlite:///{folder / 'plain.db'}"
    plain_study(0.5, 0, storage=url, name="concave")
    plain_study(2.0, 0, storage=url, name="convex")
    plain_study(0.5, 1, storage=url, name="maximized", directions=("minimize", "maximize"))
    one = optuna.create_study(storage=url, study_name="failed-only")
    one.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    return folder, url


def test_show_list_and_compare_read_a_plain_study(stored: tuple[Path, str]) -> None:
    folder, url = stored
    listed = run_main("list", "--storage", url, cwd=folder)
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith("concave "))
    assert row.split()[1:5] == ["pareto", "-", "own", "(not"]
    shown = run_main("show", "concave", "--storage", url, cwd=folder)
    assert shown.returncode == 0, shown.stderr
    assert "\ndiagnosis: concave: 1 stretch" in shown.stdout
    assert shown.stdout.splitlines()[0].split()[:4] == [
        "trial", "objective", "0", "objective",
    ]  # fmt: skip
    maximized = run_main("show", "maximized", "--storage", url, cwd=folder)
    assert "-0.99" in maximized.stdout  # the maximized objective in its own sign
    compared = run_main(
        "compare", "concave", "convex", "--storage", url, "--out", str(folder / "cmp"), cwd=folder
    )
    assert compared.returncode == 0, compared.stderr
    assert "concave: concave: 1 stretch" in compared.stdout
    assert "convex: convex within tolerance" in compared.stdout


def test_the_false_no_complete_trial_line_is_gone(stored: tuple[Path, str]) -> None:
    folder, url = stored
    failed = run_main("show", "failed-only", "--storage", url, cwd=folder)
    assert failed.returncode == 1
    assert failed.stderr.strip() == "hpsearch: error: study 'failed-only' has no complete trial yet"
    plain = run_main("show", "concave", "--storage", url, cwd=folder)
    assert "no complete trial" not in plain.stdout + plain.stderr


def test_cli_refusals_name_what_is_allowed(stored: tuple[Path, str]) -> None:
    folder, url = stored
    picked = run_main("show", "concave", "--storage", url, "--objectives", "0,5", cwd=folder)
    assert picked.returncode == 1
    assert "has objectives 0 to 1" in picked.stderr and "Traceback" not in picked.stderr
    bad = run_main("show", "concave", "--storage", url, "--losses", "a", cwd=folder)
    assert bad.returncode == 2 and "expected two names KEY1,KEY2" in bad.stderr
    fill = run_main("fill", "concave", "--storage", url, cwd=folder)
    assert fill.returncode == 1
    assert "was not made by hpsearch" in fill.stderr and "--plan" in fill.stderr
    alpha = run_main("fill", "concave", "--storage", url, "--alpha", "a", cwd=folder)
    assert alpha.returncode == 1 and "--alpha: only with --plan" in alpha.stderr


# --- aiming your own loop: plan, enqueue, run, show --------------------------------------------


def test_plan_fill_aims_inside_each_stretch() -> None:
    study = plain_study(0.5, 0)
    plan = hpsearch.plan_fill(study, n=6)
    (stretch,) = plan.diagnosis.stretches
    assert len(plan.aims) == 6 and plan.knob == "w"
    lo, hi = stretch.w_range
    values = [a.value for a in plan.aims]
    assert all(lo < w < hi for w in values) and values == sorted(values)
    # The Chebyshev minimizer of each w on the quarter circle lies strictly inside the hole.
    for aim in plan.aims:
        s = 1 / (1 + ((aim.value / (1 - aim.value)) ** 2))  # w·√s = (1 − w)·√(1 − s)
        assert 0.01 < s < 0.99
    mdmm = hpsearch.plan_fill(study, n=3, method="mdmm")
    lo, hi = stretch.epsilon_range
    assert all(lo < a.value < hi for a in mdmm.aims) and mdmm.knob == "epsilon"
    with pytest.raises(HpsearchError, match="no concave stretch or hole to aim at"):
        hpsearch.plan_fill(plain_study(2.0, 0))


def test_enqueued_aims_run_in_your_loop_and_show_counts_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'own.db'}"
    study = plain_study(0.5, 0, storage=url, name="own")
    queued = run_main("fill", "own", "--storage", url, "--plan", "--enqueue", "--n-trials", "4",
                      cwd=tmp_path)  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    assert "queued 4 trials into 'own'" in queued.stderr
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert len(waiting) == 4

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        trial.suggest_float("alpha", 0.01, 100.0, log=True)
        aim = hpsearch.fill_aim(trial)
        assert aim is not None and aim.method == "chebyshev"
        w = trial.suggest_float("w", 0.0, 1.0)  # the queued value
        assert w == aim.value
        s = 1 / (1 + (w / (1 - w)) ** 2)  # where Chebyshev descent on the circle ends
        return math.sqrt(s), math.sqrt(1 - s)

    study.optimize(objective, n_trials=4)
    diagnosis = hpsearch.diagnose(study)
    assert diagnosis.fill is not None and diagnosis.fill.aimed == 4
    assert diagnosis.fill.after > diagnosis.fill.before + 0.1
    # Aimed trials are not linear-α runs, though they suggested alpha too.
    aimed = diagnosis.points.aimed
    assert aimed is not None and np.isnan(diagnosis.points.alpha[aimed]).all()
    shown = run_main("show", "own", "--storage", url, cwd=tmp_path)
    assert "fill: 4 trials aimed by hpsearch fill; hypervolume" in shown.stdout


# --- record, Chebyshev and MDMM ------------------------------------------------------------------


def test_record_keeps_the_history_and_writes_once_per_epoch(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'r.db'}")
    trial = study.ask()
    writes: list[str] = []
    original = trial.set_user_attr
    trial.set_user_attr = lambda key, value: (writes.append(key), original(key, value))  # type: ignore[method-assign]
    hpsearch.record(trial, torch.tensor(2.0), 1.0, metric=0.5)
    hpsearch.record(trial, 1.5, 0.8)
    hpsearch.record(trial, 1.2, 0.7, epoch=2)  # epoch 2 again: replaced
    assert writes == [keys.HISTORY] * 3
    history = study.trials[0].user_attrs[keys.HISTORY]
    assert history[keys.VAL_LOSS1] == [2.0, 1.2] and history[keys.VAL_LOSS2] == [1.0, 0.7]
    assert history[keys.VAL_METRIC][0] == 0.5 and math.isnan(history[keys.VAL_METRIC][1])
    with pytest.raises(HpsearchError, match="loss2 must be a number"):
        hpsearch.record(trial, 1.0, "x")
    with pytest.raises(HpsearchError, match="epoch=0 must be >= 1"):
        hpsearch.record(trial, 1.0, 1.0, epoch=0)


def test_recorded_histories_tell_converged_runs_in_a_plain_study() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    for number, alpha in enumerate(np.exp(np.linspace(math.log(0.05), math.log(20), 20))):
        l1, l2 = linear_outcome(0.5, float(alpha), 0.3)
        moving = number == 10
        curve = [(l1 + (0.3 * (20 - e) if moving else 0), l2) for e in range(20)]
        study.add_trial(
            optuna.trial.create_trial(
                params={"alpha": float(alpha)},
                distributions={"alpha": ALPHA},
                values=[l1, l2],
                user_attrs={
                    keys.HISTORY: {
                        keys.VAL_LOSS1: [c[0] for c in curve],
                        keys.VAL_LOSS2: [c[1] for c in curve],
                    }
                },
            )
        )
    diagnosis = hpsearch.diagnose(study)
    assert diagnosis.points.convergence == "history"
    assert int((~diagnosis.analysis.converged).sum()) == 1
    assert "convergence assumed" not in diagnosis.verdict


def test_chebyshev_and_mdmm_objects_compute_the_documented_losses() -> None:
    l1, l2 = torch.tensor(2.0, requires_grad=True), torch.tensor(1.0, requires_grad=True)
    # max(0.3·(2 − 0)/1, 0.7·(1 − 0)/1) = 0.7: the L2 term.
    loss = hpsearch.Chebyshev(0.3)(l1, l2)
    assert loss.item() == pytest.approx(0.7)
    loss.backward()
    assert float(l1.grad) == 0.0 and float(l2.grad) == pytest.approx(0.7)
    shifted = hpsearch.Chebyshev(0.5, ideal=(1.0, 0.0), scales=(2.0, 4.0))
    assert float(shifted(torch.tensor(3.0), torch.tensor(2.0))) == pytest.approx(0.5)
    mdmm = hpsearch.MDMM(epsilon=0.5, damping=2.0, lambda_lr=0.1)
    first = mdmm(torch.tensor(1.0), torch.tensor(1.5))  # λ = 0: 1 + max(0, 2·1.0)·1.5 = 4
    assert float(first) == pytest.approx(4.0)
    assert float(mdmm.multiplier) == pytest.approx(0.1)  # 0 + 0.1·(1.5 − 0.5)
    second = mdmm(torch.tensor(1.0), torch.tensor(0.2))  # max(0, 0.1 + 2·(−0.3)) = 0
    assert float(second) == pytest.approx(1.0)
    assert float(mdmm.multiplier) == pytest.approx(0.07)  # 0.1 + 0.1·(0.2 − 0.5)
    with pytest.raises(HpsearchError, match="w=1.0 must be in"):
        hpsearch.Chebyshev(1.0)

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import hpsearch
from hpsearch import DivergedError, HpsearchError, ModelSpec, TrainConfig, load_dataset, train
from tests.conftest import fresh_python

SPEC = ModelSpec(kind="mlp", depth=1, width=16)


def _run(setup: str = "weight_decay", dataset: str = "iris", **kw) -> hpsearch.TrainResult:
    cfg = TrainConfig(**{"lr": 0.01, "epochs": 5, **kw})
    return train(hpsearch.get_setup(setup)(), load_dataset(dataset), SPEC, cfg)


def test_flooded_loss_flips_the_gradient_below_the_flood_level() -> None:
    for value, b, expected, grad in [(0.5, 0.2, 0.5, 1.0), (0.1, 0.2, 0.3, -1.0)]:
        loss = torch.tensor(value, requires_grad=True)
        out = hpsearch.flooded_loss(loss, b)
        out.backward()
        assert float(out.detach()) == pytest.approx(expected)
        assert float(loss.grad) == grad
    loss = torch.tensor(0.1)
    assert hpsearch.flooded_loss(loss, 0.0) is loss


def test_combined_loss_is_flooded_task_loss_plus_alpha_times_l2() -> None:
    out = hpsearch.combined_loss(torch.tensor(0.1), torch.tensor(3.0), alpha=0.5, flood=0.2)
    assert float(out) == pytest.approx(0.3 + 1.5)


@pytest.mark.parametrize(
    "optimizer, lr",
    [
        ("sgd", 0.1),
        ("momentum", 0.05),
        ("nesterov", 0.05),
        ("adagrad", 0.05),
        ("rmsprop", 0.003),
        ("adam", 0.005),
    ],
)
def test_every_optimizer_trains(optimizer: str, lr: float) -> None:
    result = _run(optimizer=optimizer, lr=lr, epochs=15, dataset="wine")
    first = result.history[0]
    assert result.history[-1].train_objective < 0.7 * first.train_objective
    assert result.val["metric"] >= 0.85


def test_history_has_one_record_per_epoch_and_decays_lr() -> None:
    result = _run(epochs=4, lr=0.1, lr_decay=0.5, optimizer="sgd")
    assert [r.epoch for r in result.history] == [1, 2, 3, 4]
    assert [r.lr for r in result.history] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    cols = result.history_columns()
    assert cols["val_loss1"] == pytest.approx([r.val_loss1 for r in result.history], rel=1e-5)
    assert "epoch" not in cols and len(cols["lr"]) == 4
    assert result.val["loss1"] == result.history[-1].val_loss1
    assert set(result.test) >= {"loss1", "loss2", "metric"}


def test_larger_alpha_gives_a_smaller_penalty() -> None:
    norms = [
        _run(alpha=a, epochs=10, optimizer="adam", lr=0.02).val["loss2"] for a in (0.0, 0.01, 0.1)
    ]
    assert norms[0] > norms[1] > norms[2]


def test_flooding_keeps_the_training_loss_near_the_flood_level() -> None:
    free = _run(epochs=40, lr=0.01, dataset="wine")
    flooded = _run(epochs=40, lr=0.01, dataset="wine", flood=0.3)
    assert free.train["loss1"] < 0.1
    assert 0.2 < flooded.train["loss1"] < 0.4


def test_same_seed_same_result_other_seed_other_result() -> None:
    a, b, c = _run(seed=1), _run(seed=1), _run(seed=2)
    assert a.val == b.val and a.history == b.history
    assert a.val["loss1"] != c.val["loss1"]


def test_beta_vae_training_is_reproducible() -> None:
    a = _run("beta_vae", "digits", epochs=2, alpha=1.0)
    b = _run("beta_vae", "digits", epochs=2, alpha=1.0)
    assert a.val == b.val


def test_divergence_raises_with_the_reason() -> None:
    with pytest.raises(DivergedError, match=r"diverged: non-finite .* at epoch 1"):
        _run(optimizer="sgd", lr=1e8, dataset="diabetes", epochs=3)


def test_on_epoch_end_sees_every_epoch_and_can_stop_training() -> None:
    seen = []

    class Stop(Exception):
        pass

    def callback(record: hpsearch.EpochRecord) -> None:
        seen.append(record.epoch)
        if record.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        train(
            hpsearch.get_setup("weight_decay")(),
            load_dataset("iris"),
            SPEC,
            TrainConfig(epochs=5),
            on_epoch_end=callback,
        )
    assert seen == [1, 2]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"momentum": 1.0}, "momentum=1.0"),
        ({"epochs": 0}, "epochs=0"),
    ],
)
def test_bad_train_config(kwargs: dict, match: str) -> None:
    with pytest.raises(HpsearchError, match=match):
        TrainConfig(**kwargs)


def test_losses_are_finite_numbers() -> None:
    result = _run("two_task", "digits", epochs=2, alpha=1.0)
    assert all(math.isfinite(v) for v in result.val.values())
    assert "metric_b" in result.val


def test_chebyshev_scalarize_is_the_weighted_max() -> None:
    out = hpsearch.chebyshev_scalarize(
        torch.tensor(2.0), torch.tensor(10.0), w=0.25, ideal=(1.0, 0.0), scale=(1.0, 20.0)
    )
    assert float(out) == pytest.approx(max(0.25 * 1.0, 0.75 * 0.5))


def test_mdmm_gradient_and_multiplier_step() -> None:
    theta = torch.tensor([1.0, 2.0], requires_grad=True)
    l1, l2 = (theta**2).sum(), theta.sum()  # ∇L1 = 2θ, ∇L2 = 1
    lam, eps, c = torch.tensor(0.5), 1.0, 10.0
    hpsearch.mdmm_loss(l1, l2, lam, eps, c).backward()
    g = 3.0 - eps
    assert theta.grad.tolist() == pytest.approx([2 + 0.5 + c * g, 4 + 0.5 + c * g])
    assert float(hpsearch.mdmm_multiplier_step(lam, l2, eps, 0.1)) == pytest.approx(0.7)
    assert float(hpsearch.mdmm_multiplier_step(lam, torch.tensor(-100.0), eps, 0.1)) == 0.0


def test_mdmm_inside_its_budget_does_not_push_l2_up() -> None:
    # The inequality L2 <= ε: with λ + c·(L2 − ε) < 0 the coefficient of ∇L2 is 0 (not the
    # negative c·(L2 − ε) of an equality constraint, which would ascend on L2).
    theta = torch.tensor([1.0, 2.0], requires_grad=True)
    l1, l2 = (theta**2).sum(), theta.sum()  # L2 = 3, far inside ε = 10
    hpsearch.mdmm_loss(l1, l2, torch.tensor(0.5), 10.0, 10.0).backward()
    assert theta.grad.tolist() == [2.0, 4.0]  # ∇L1 alone


def test_mdmm_with_a_slack_budget_ends_where_the_unconstrained_run_ends() -> None:
    # ε far above anything L2 reaches: every step's coefficient is 0, so the run is the
    # unconstrained one (linear with α = 0), step for step, and ends with L2 < ε.
    free = _run(setup="weight_decay", dataset="wine", epochs=4, method="linear", alpha=0.0)
    slack = _run(setup="weight_decay", dataset="wine", epochs=4, method="mdmm", epsilon=1e6)
    assert slack.val["loss1"] == pytest.approx(free.val["loss1"], rel=1e-6)
    assert slack.val["loss2"] == pytest.approx(free.val["loss2"], rel=1e-6)
    assert slack.val["loss2"] < 1e6 and slack.info["feasible"] == 1.0
    # On Fonseca–Fleming the unconstrained optimum is the f1 = 0 end, where f2 = 1 − e^−4;
    # a budget ε = 0.99 above that must not drag f2 up to 0.99.
    result = _ff("mdmm", epsilon=0.99, lambda_lr=0.5, seed=0)
    assert result.val["loss1"] < 1e-3
    assert result.val["loss2"] == pytest.approx(1 - math.exp(-4), abs=1e-3)


def _ff(method: str, **kw) -> hpsearch.TrainResult:
    cfg = TrainConfig(method=method, optimizer="sgd", lr=0.05, epochs=300, normalize="none", **kw)
    return train(hpsearch.get_setup("fonseca_fleming")(), load_dataset("none"), SPEC, cfg)


def test_on_a_concave_front_linear_alpha_lands_on_the_ends_and_the_others_do_not() -> None:
    for seed, alpha in enumerate([0.3, 1.0, 3.0]):
        val = _ff("linear", alpha=alpha, seed=seed).val
        assert min(val["loss1"], val["loss2"]) < 0.05  # one end of the front
    for seed, w in enumerate([0.3, 0.5, 0.7]):
        val = _ff("chebyshev", w=w, seed=seed).val
        assert 0.2 < val["loss1"] < 0.9 and 0.2 < val["loss2"] < 0.9  # the balanced middle
        assert val["metric"] > -0.01  # on the Pareto set
    result = _ff("mdmm", epsilon=0.5, lambda_lr=0.5, seed=0)
    assert result.val["loss2"] == pytest.approx(0.5, abs=0.005)
    assert result.info["feasible"] == 1.0 and result.info["multiplier"] > 0
    # On the front, f2 = 0.5 means x_i = t with (t + 1/√2)² = ln 2 / 2, so f1 = 0.744.
    assert result.val["loss1"] == pytest.approx(0.744, abs=0.01)
    assert result.history[-1].multiplier == pytest.approx(result.info["multiplier"], rel=1e-5)


def test_chebyshev_initial_normalization_records_its_scales() -> None:
    result = _run(method="chebyshev", w=0.5, epochs=3)
    assert result.info["scale1"] > 0.5 and result.info["scale2"] > 1.0
    assert "scale1" not in _run(method="chebyshev", w=0.5, epochs=1, normalize="none").info


@pytest.mark.parametrize("method", hpsearch.INNER_METHODS)
@pytest.mark.parametrize("optimizer", hpsearch.OPTIMIZERS)
def test_every_inner_method_combines_with_every_optimizer_and_flooding(method, optimizer) -> None:
    result = _run(
        method=method,
        optimizer=optimizer,
        flood=0.1,
        epochs=3,
        epsilon=10.0,
        damping=1.0,
        alpha=0.01,
        lr=0.01,
    )
    assert all(math.isfinite(v) for v in result.val.values())
    assert ("feasible" in result.info) == (method == "mdmm")


def _full_batch_by_hand(steps: list[str], b: float = 0.0, lr: float = 0.1, alpha: float = 0.3):
    """Validation task loss after full-batch SGD steps done by hand on iris: each step is
    "plain", "backstitch" (ascent α·lr, then descent (1 + α)·lr at the moved point) or
    "iflood" (descent on mean_i |ℓ_i − b| + b)."""
    setup = hpsearch.get_setup("weight_decay")()
    data = setup.prepare(load_dataset("iris"))
    torch.manual_seed(0)
    module = setup.build_model(data, SPEC)
    x, y = data.train.x, data.train.y

    def sgd(scale: float, per_sample: bool = False) -> None:
        if per_sample:
            rows = hpsearch.task_loss(module(x), y, reduction="none")
            loss = ((rows - b).abs() + b).mean()
        else:
            loss = hpsearch.task_loss(module(x), y)
        grads = torch.autograd.grad(loss, list(module.parameters()))
        with torch.no_grad():
            for p, g in zip(module.parameters(), grads, strict=True):
                p -= scale * lr * g

    for step in steps:
        if step == "backstitch":
            sgd(-alpha)
            sgd(1 + alpha)
        else:
            sgd(1.0, per_sample=step == "iflood")
    with torch.no_grad():
        return float(hpsearch.task_loss(module(data.val.x), data.val.y))


@pytest.mark.parametrize(
    "kw, steps",
    [
        ({"backstitch": 0.3}, ["backstitch", "backstitch", "backstitch"]),
        ({"backstitch": 0.3, "backstitch_interval": 2}, ["backstitch", "plain", "backstitch"]),
        ({"flood": 1.0, "flood_mode": "sample"}, ["iflood", "iflood", "iflood"]),
        ({}, ["plain", "plain", "plain"]),
    ],
    ids=["backstitch", "interval-2", "iflood", "plain"],
)
def test_backstitch_and_iflood_steps_match_the_papers_updates(kw: dict, steps: list) -> None:
    result = _run(optimizer="sgd", lr=0.1, epochs=3, batch_size=1000, **kw)
    assert result.history[-1].val_loss1 == pytest.approx(
        _full_batch_by_hand(steps, b=kw.get("flood", 0.0)), rel=1e-5
    )


def test_iflood_differs_from_batch_flooding_and_backstitch_from_plain() -> None:
    # Guards the test above: a level between the rows' losses makes the two floodings differ.
    batch = _run(optimizer="sgd", lr=0.1, epochs=3, batch_size=1000, flood=1.0)
    sample = _run(
        optimizer="sgd", lr=0.1, epochs=3, batch_size=1000, flood=1.0, flood_mode="sample"
    )
    plain = _run(optimizer="sgd", lr=0.1, epochs=3, batch_size=1000)
    stitched = _run(optimizer="sgd", lr=0.1, epochs=3, batch_size=1000, backstitch=0.3)
    assert abs(batch.val["loss1"] - sample.val["loss1"]) > 1e-4
    assert abs(plain.val["loss1"] - stitched.val["loss1"]) > 1e-4


@pytest.mark.parametrize(
    "optimizer", [o for o in hpsearch.OPTIMIZERS if o not in ("sgd", "nesterov")]
)
def test_backstitch_combines_with_every_optimizer_and_flooding(optimizer: str) -> None:
    result = _run(
        optimizer=optimizer, lr=0.01, epochs=10, dataset="wine", backstitch=0.2, flood=0.05
    )
    assert result.val["metric"] >= 0.85 and all(math.isfinite(r.val_loss1) for r in result.history)


def test_iflood_needs_a_setup_with_per_sample_losses() -> None:
    with pytest.raises(HpsearchError, match="per-sample"):
        _run(setup="beta_vae", dataset="digits", flood=0.1, flood_mode="sample", epochs=1)


@pytest.mark.parametrize(
    "kw", [{"backstitch": -0.1}, {"backstitch_interval": 0}, {"flood_mode": "row"}]
)
def test_bad_backstitch_or_flood_mode_is_refused(kw: dict) -> None:
    with pytest.raises(HpsearchError, match=next(iter(kw))):
        TrainConfig(**kw)


def test_train_config_and_study_files_share_one_table_of_domains() -> None:
    import dataclasses

    from hpsearch.core.knobs import TRAIN_BUDGET, TRAIN_PARAMS
    from hpsearch.study.config import BUDGET, CORE_PARAMS

    table = {**TRAIN_PARAMS, **TRAIN_BUDGET}
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    # Every knob of a run is declared once, with the same default, and study files offer it.
    assert set(fields) - {"seed"} == set(table)
    assert {name: fields[name] for name in table} == {n: o.default for n, o in table.items()}
    assert all(CORE_PARAMS[name] is option for name, option in TRAIN_PARAMS.items())
    assert BUDGET is TRAIN_BUDGET
    # The table is what TrainConfig checks: each bound it declares is enforced.
    for name, bad in [("w", 1.0), ("lr", 0.0), ("momentum", 1.0), ("backstitch_interval", 0),
                      ("epochs", 100_001), ("lambda_lr", 0.0), ("ideal1", math.inf)]:  # fmt: skip
        with pytest.raises(HpsearchError, match=f"invalid {name}="):
            TrainConfig(**{name: bad})
    with pytest.raises(HpsearchError, match="unknown normalize 'z'; allowed: initial, none"):
        TrainConfig(normalize="z")


def test_the_knobs_record_is_exactly_what_the_inner_methods_read() -> None:
    import torch

    from hpsearch.core.train import RUN_STATE, SCALARIZATION_FIELDS, inner_loss

    class Recording(dict):
        read: set[str] = set()

        def __getitem__(self, key):
            Recording.read.add(key)
            return super().__getitem__(key)

    knobs = Recording({name: 0.5 for name in (*SCALARIZATION_FIELDS, *RUN_STATE)})
    knobs["multiplier"] = torch.tensor(0.0)
    for method in hpsearch.INNER_METHODS:
        inner_loss(method, torch.tensor(1.0), torch.tensor(2.0), knobs)
    # Nothing declared that no method reads, nothing read that is not declared.
    assert Recording.read == {*SCALARIZATION_FIELDS, *RUN_STATE}
    # Every scalarization field is a TrainConfig field, with a domain in the one table.
    from hpsearch.core.knobs import TRAIN_PARAMS

    assert set(SCALARIZATION_FIELDS) <= set(TRAIN_PARAMS)


FUSED_OPTIMIZERS = ("adam", "adagrad")


@pytest.mark.parametrize("optimizer", list(hpsearch.OPTIMIZERS))
def test_optimizers_take_torch_s_steps_bit_for_bit(optimizer: str) -> None:
    # Ours calls torch's update functions on state it keeps itself, with the fused kernels for
    # Adam and Adagrad (what Adam(fused=True) runs) and the foreach ones for the others: not a
    # single bit may differ from torch's optimizer with those kernels, over
    # steps, a learning-rate change (decay, backstitch), a second group with its own rate
    # (the playground), and a parameter that has no gradient at some steps (it must not move,
    # and its state must start at its own first step).
    from hpsearch.core.train import make_optimizer

    torch.manual_seed(0)
    start = [torch.randn(7, 5), torch.randn(5), torch.randn(3, 7), torch.randn(4) * 1e-6]
    # The last parameter's gradients are tiny: where an eps of the update matters.
    grads = [
        [torch.randn_like(p) * (1e-8 if i == 3 else 1.0) for i, p in enumerate(start)]
        for _ in range(5)
    ]
    defaults = {"sgd": {}, "momentum": {"momentum": 0.9}, "nesterov": {"momentum": 0.9}}
    cls = {"adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop}.get(
        optimizer, torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    )
    kw = {**defaults.get(optimizer, {}), **({"nesterov": True} if optimizer == "nesterov" else {})}
    ours = [p.clone().requires_grad_(True) for p in start]
    ref = [p.clone().requires_grad_(True) for p in start]
    opt_ours = make_optimizer(optimizer, ours[:3], lr=0.01, momentum=0.9)
    kernel = {"fused": True} if optimizer in FUSED_OPTIMIZERS else {"foreach": False}
    opt_ref = cls(ref[:3], lr=0.01, **kernel, **kw)
    opt_ours.add_param_group({"params": [ours[3]], "lr": 0.003})
    opt_ref.add_param_group({"params": [ref[3]], "lr": 0.003})
    for n, step in enumerate(grads):
        for params, opt in ((ours, opt_ours), (ref, opt_ref)):
            opt.zero_grad(set_to_none=True)
            for i, (p, g) in enumerate(zip(params, step, strict=True)):
                if not (i == 1 and n in (0, 3)):  # parameter 1: no gradient at steps 0 and 3
                    p.grad = g.clone()
            if n == 2:
                opt.param_groups[0]["lr"] *= -0.5  # a backstitch-like ascent step
            opt.step()
            if n == 2:
                opt.param_groups[0]["lr"] /= -0.5
        if n == 0:
            assert torch.equal(ours[1], start[1])  # no gradient yet: not moved
        for a, b in zip(ours, ref, strict=True):
            assert torch.equal(a, b), f"step {n}"
    for i, a in enumerate(ours):
        assert not torch.equal(a, start[i])  # every parameter moved in the end


def test_training_imports_no_torch_dynamo() -> None:
    # torch.optim's classes import torch._dynamo (1.9 s) when built and at their first step;
    # the sequential run's optimizer must not (a new process: the suite imported it already).
    code = (
        "import sys, torch\n"
        "from hpsearch.core.train import make_optimizer\n"
        "for name in ('sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam'):\n"
        "    p = torch.randn(3, requires_grad=True)\n"
        "    opt = make_optimizer(name, [p], lr=0.1, momentum=0.9)\n"
        "    p.sum().backward(); opt.step(); opt.zero_grad()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    assert fresh_python(code) == "False"


@pytest.mark.parametrize("setup", ["weight_decay", "sparsity"])
@pytest.mark.parametrize(
    "kw",
    [
        {"alpha": 0.3},
        {"method": "chebyshev", "w": 0.3},
        {"method": "mdmm", "epsilon": 0.5, "damping": 1.0, "lambda_lr": 0.5},
        {"alpha": 0.3, "backstitch": 0.3, "flood": 0.5, "flood_mode": "sample"},
    ],
    ids=["linear", "chebyshev", "mdmm", "backstitch-iflood"],
)
def test_penalty_gradient_by_hand_is_autograd_s(setup: str, kw: dict) -> None:
    # The sequential step backpropagates through L1 alone and adds c2·∇L2 itself; against the
    # same run with L2 through autograd (as a subclass that changes the losses trains).
    cls = hpsearch.get_setup(setup)

    class ThroughAutograd(cls):  # type: ignore[misc, valid-type]
        def losses(self, module, x, y):
            return super().losses(module, x, y)

    data = load_dataset("iris")
    assert ThroughAutograd().penalty_by_hand(torch.nn.Linear(2, 2)) is None
    assert cls().penalty_by_hand(torch.nn.Linear(2, 2)) is not None
    cfg = TrainConfig(**{"optimizer": "sgd", "lr": 0.1, "epochs": 4, "batch_size": 32, **kw})
    by_hand = train(cls(), data, SPEC, cfg)
    autograd = train(ThroughAutograd(), data, SPEC, cfg)
    for a, b in zip(by_hand.history, autograd.history, strict=True):
        assert (a.train_objective, a.val_loss1, a.val_loss2, a.multiplier) == pytest.approx(
            (b.train_objective, b.val_loss1, b.val_loss2, b.multiplier), rel=1e-5, abs=1e-7
        )
    unpulled = dataclasses.replace(cfg, alpha=0.0, w=0.99, epsilon=100.0)
    # Guards the comparison: the penalty's gradient moved these runs.
    assert by_hand.val["loss2"] != pytest.approx(
        train(cls(), data, SPEC, unpulled).val["loss2"], rel=1e-3
    )


def test_a_frozen_weight_gets_no_penalty_gradient_by_hand() -> None:
    # A user's weight_decay whose first layer is frozen: the penalty still counts it, its
    # gradient does not move it, and the run matches autograd's.
    cls = hpsearch.get_setup("weight_decay")

    class Frozen(cls):  # type: ignore[misc, valid-type]
        def build_model(self, data, spec):
            module = super().build_model(data, spec)
            module[0].weight.requires_grad_(False)
            return module

    class FrozenThroughAutograd(Frozen):
        def losses(self, module, x, y):
            return super().losses(module, x, y)

    data = load_dataset("iris")
    cfg = TrainConfig(optimizer="sgd", lr=0.1, alpha=0.3, epochs=3, batch_size=32)
    by_hand, autograd = (
        train(Frozen(), data, SPEC, cfg),
        train(FrozenThroughAutograd(), data, SPEC, cfg),
    )
    assert by_hand.val == pytest.approx(autograd.val, rel=1e-5)

"""Device code paths, checked on the CPU.

Every tensor that training makes must be made where its data lies. With torch's default device
set to ``meta`` (tensors without storage), a tensor made without an explicit device lands on
meta and the first op that meets a real one fails: a run whose data lies on the CPU then
passes only if each factory names its device, which a CUDA run needs just the same.
"""

from __future__ import annotations

import pytest
import torch

import hpsearch
from hpsearch import HpsearchError, ModelSpec, TrainConfig, load_dataset
from hpsearch.core.device import check_device_name, resolve_device
from hpsearch.core.population import train_population
from hpsearch.core.train import train

SPEC = ModelSpec(depth=1, width=8)
CPU = torch.device("cpu")


def _same(a: hpsearch.TrainResult, b: hpsearch.TrainResult) -> None:
    assert a.val == b.val and a.test == b.test and a.info == b.info
    assert [r.val_loss1 for r in a.history] == [r.val_loss1 for r in b.history]


SEQUENTIAL = [
    ("weight_decay", "iris", {"optimizer": "adam", "alpha": 0.1, "lr_decay": 0.9}),
    ("weight_decay", "iris", {"optimizer": "adagrad", "method": "mdmm", "epsilon": 0.5}),
    ("sparsity", "wine", {"optimizer": "rmsprop", "method": "chebyshev", "w": 0.3}),
    (
        "weight_decay",
        "iris",
        {"optimizer": "nesterov", "backstitch": 0.3, "flood": 0.4, "flood_mode": "sample"},
    ),  # fmt: skip
    ("two_task", "wine", {"optimizer": "momentum", "alpha": 0.5}),
    ("beta_vae", "iris", {"optimizer": "sgd", "alpha": 0.5}),
    ("two_task", "wine", {"method": "jd", "aggregator": "aligned_mtl", "w": 0.3}),
    ("weight_decay", "iris", {"method": "jd", "aggregator": "upgrad", "backstitch": 0.3}),
    ("weight_decay", "iris", {"method": "jd", "flood": 0.4, "flood_mode": "sample"}),
]


@pytest.mark.parametrize("setup, dataset, kw", SEQUENTIAL, ids=lambda v: str(v)[:24])
def test_a_sequential_run_makes_every_tensor_on_its_data_s_device(setup, dataset, kw) -> None:
    data = load_dataset(dataset)
    cfg = TrainConfig(**{"lr": 0.01, "epochs": 3, "batch_size": 32, **kw})
    plain = train(hpsearch.get_setup(setup)(), data, SPEC, cfg)
    moved = data.to(CPU)
    with torch.device("meta"):
        on_device = train(hpsearch.get_setup(setup)(), moved, SPEC, cfg)
    _same(on_device, plain)  # and results identical to a run that names no device


POPULATION = [
    ("weight_decay", "iris", {"optimizer": "adam", "method": "mdmm", "epsilon": 0.5}),
    ("sparsity", "iris", {"optimizer": "adagrad", "backstitch": 0.3}),
    ("weight_decay", "iris", {"optimizer": "nesterov", "flood": 0.4, "flood_mode": "sample"}),
    ("two_task", "wine", {"optimizer": "rmsprop", "method": "chebyshev", "w": 0.4}),
    ("beta_vae", "iris", {"optimizer": "sgd", "alpha": 0.5, "lr_decay": 0.9}),
]


@pytest.mark.parametrize("setup, dataset, kw", POPULATION, ids=lambda v: str(v)[:24])
def test_a_population_makes_every_tensor_on_its_data_s_device(setup, dataset, kw) -> None:
    # The fast path and vmap, a refill of a new member after a judged stop (regrouping).
    data = load_dataset(dataset)
    configs = [
        TrainConfig(**{"lr": lr, "epochs": 3, "batch_size": 32, "seed": i, **kw})
        for i, lr in enumerate((0.01, 0.02, 0.005))
    ]
    refills = [TrainConfig(**{"lr": 0.03, "epochs": 3, "batch_size": 32, "seed": 7, **kw})]

    def run(d):
        pending = list(refills)
        return train_population(
            hpsearch.get_setup(setup)(), d, SPEC, configs,
            judge=lambda records: {index: RuntimeError("judged") for index, r in records
                                   if index == 1 and r.epoch == 1},
            refill=lambda free: [pending.pop()] if pending else [],
            metric_every_epoch=True,
        )  # fmt: skip

    plain = run(data)
    moved = data.to(CPU)
    with torch.device("meta"):
        on_device = run(moved)
    assert len(plain) == len(on_device) == 4
    for a, b in zip(on_device, plain, strict=True):
        if isinstance(b, Exception):
            assert str(a) == str(b)
        else:
            _same(a, b)


def test_device_names_are_checked_and_an_absent_gpu_is_named_in_one_line() -> None:
    for name in ("cpu", "cuda", "cuda:0", "cuda:12", "auto"):
        assert check_device_name(name) == name
    for bad in ("gpu", "CUDA", "cuda:", "cuda:x", "mps", 0, None):
        with pytest.raises(HpsearchError, match="allowed: cpu, cuda, cuda:N, auto"):
            check_device_name(bad)
    assert resolve_device("cpu") == CPU
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the absent-GPU message cannot be seen")
    assert resolve_device("auto") == CPU
    for name in ("cuda", "cuda:1"):
        with pytest.raises(HpsearchError) as caught:
            resolve_device(name)
        message = str(caught.value)
        assert "\n" not in message and "no CUDA device here" in message and "'cpu'" in message


def test_a_dataset_moves_once_and_keeps_its_values() -> None:
    data = load_dataset("iris")
    assert data.to(CPU).train is data.train  # already there: not copied
    assert data.device == CPU


def test_adagrad_takes_its_fused_kernel_on_the_cpu_only() -> None:
    # torch's fused Adagrad is a CPU kernel: on a GPU the foreach one, whose step counts stay
    # on the CPU; the two agree to rounding (the foreach branch runs here on CPU tensors).
    from hpsearch.core import optimizers

    assert optimizers.fused_adagrad_runs_on(CPU)
    assert not optimizers.fused_adagrad_runs_on(torch.device("cuda"))
    torch.manual_seed(0)
    start, grads = torch.randn(5), [torch.randn(5) for _ in range(3)]
    ends = []
    for fused in (True, False):
        p = start.clone().requires_grad_(True)
        opt = optimizers.Optimizer("adagrad", [p], lr=0.1)
        original = optimizers.fused_adagrad_runs_on
        optimizers.fused_adagrad_runs_on = lambda device, fused=fused: fused
        try:
            for g in grads:
                p.grad = g.clone()
                opt.step()
        finally:
            optimizers.fused_adagrad_runs_on = original
        assert opt.state[p]["step"].device == CPU and float(opt.state[p]["step"]) == 3
        ends.append(p.detach().clone())
    assert torch.allclose(ends[0], ends[1], rtol=1e-6) and not torch.equal(ends[0], start)

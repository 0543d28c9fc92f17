"""What the labs' studies share with ``hpsearch run``'s: a rerun continues a stored study toward
its target (the trials that count, as in :func:`hpsearch.study.storage.counts_toward_target`),
and only at the budget it was tuned with (``--steps`` / ``--epochs`` may change the file's)."""

from __future__ import annotations

import optuna

from hpsearch.errors import HpsearchError
from hpsearch.study import keys
from hpsearch.study.storage import counts_toward_target


def check_budget(study: optuna.Study, budget: dict[str, int]) -> None:
    """Record ``budget`` on a new study; refuse to continue a study tuned at another one.

    A study stored before budgets were recorded, with trials, is continued as it is.

    Raises:
        HpsearchError: The stored study was tuned with a different budget.
    """
    stored = study.user_attrs.get(keys.LAB_BUDGET)
    if stored is None:
        if not study.get_trials(deepcopy=False):
            study.set_user_attr(keys.LAB_BUDGET, budget)
        return
    if stored != budget:
        was = ", ".join(f"{k}={v}" for k, v in stored.items())
        now = ", ".join(f"{k}={v}" for k, v in budget.items())
        flags = " ".join(f"--{k} {v}" for k, v in stored.items())
        raise HpsearchError(
            f"study {study.study_name!r} in the storage was tuned with {was}, not {now}; "
            f"continue it with {flags}, or use another --storage"
        )


def check_stored_budgets(
    storage: str | optuna.storages.BaseStorage, names: list[str], budget: dict[str, int]
) -> None:
    """:func:`check_budget` for every study of ``names`` already stored, before any trains:
    a command that will refuse its third study does not train the first two first."""
    stored = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    for name in names:
        if name in stored:
            check_budget(optuna.load_study(study_name=name, storage=storage), budget)


def trials_to_run(study: optuna.Study, target: int) -> int:
    """Trials still to run for ``study`` to have ``target`` that count (stored ones included)."""
    counted = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
    return max(target - counted, 0)

"""Every key hpsearch writes to a study or trial in storage, defined once.

Readers (tables, figures, the dashboard, ``fill``) import these instead of spelling the
strings, so renaming one is one edit. This module imports nothing: reading a stored study
never pulls in torch.
"""

from __future__ import annotations

# Study user attribute: what hpsearch knows about the study (its definition, identity, file).
STUDY = "hpsearch"
# Study user attribute: how many complete trials the last PNG artifact drew; written after the
# upload, so a run interrupted while publishing leaves it stale and the next run publishes.
PUBLISHED_TRIALS = "published_trials"

# Trial user attributes written by the objective.
VAL_LOSS1 = "val_loss1"
VAL_LOSS2 = "val_loss2"
VAL_METRIC = "val_metric"
FEASIBLE = "feasible"  # an MDMM run met its budget ε (True for the other methods)
CONSTRAINT_VIOLATION = "constraint_violation"
HISTORY = "history"  # per-epoch columns of the run
EPOCHS_RUN = "epochs_run"
TRAIN_SECONDS = "train_seconds"
TORCH_THREADS = "torch_threads"  # results depend on it (float sums in another order)
DEVICE = "device"  # where the trial trained ("cpu", "cuda:0"): results depend on it too
TRAIN_SEED = "train_seed"
INIT_SEED = "init_seed"  # the initial weights' seed, however init_seed was given
POPULATION_SIZE = "population_size"  # trained as one member of a batch of this many
FAIL_REASON = "fail_reason"  # a trial that failed by itself (diverged), not by a crash
SURPLUS = "surplus"  # started by a worker after the study's target was met
# System attr: when a journal worker stored a batch trial RUNNING to finish it (seconds since
# the epoch); a trial RUNNING long after that belongs to a worker that died finishing it.
FINISHING_SINCE = "hpsearch_finishing_since"
# A trial that `hpsearch fill --enqueue` queued into a study: the knobs it aims with (a dict:
# method, knob value, ideal point and scales); the user's loop reads it with hpsearch.fill_aim.
FILL_AIM = "hpsearch_fill_aim"


def split_key(split: str, name: str) -> str:
    """The user attribute of ``name`` (``loss1``, ``metric``, ...) on ``split``."""
    return f"{split}_{name}"


# Study user attributes of the labs' studies (playground and MGS), shown by ``hpsearch list``.
LAB_FUNCTION = "function"
LAB_OPTIMIZER = "optimizer"
LAB_ESTIMATOR = "estimator"
LAB_DATASET = "dataset"
LAB_METRIC = "metric"
LAB_SECONDS = "seconds"
LAB_TEST = "test"
LAB_REACHED = "reached"
LAB_BUDGET = "budget"  # a lab study's run budget (steps or epochs): a rerun must match it

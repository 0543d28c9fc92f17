"""Studies: study files and their validation, the attribute keys written to storage, storages,
samplers and pruners, the Optuna objective, the run loop, workers and batched persistence.

May import: :mod:`hpsearch.core`, :mod:`hpsearch.errors`, Optuna. Reading stored studies needs
only :mod:`~hpsearch.study.keys` and :mod:`~hpsearch.study.storage`, which do not import torch.
"""

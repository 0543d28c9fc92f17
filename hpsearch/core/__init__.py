"""The training core: datasets, models, the pairs of losses (setups), scalarizations and the
training loops, sequential and population.

It knows nothing of Optuna, of study files or of storage: give it tensors and a
:class:`~hpsearch.core.train.TrainConfig`, get a :class:`~hpsearch.core.train.TrainResult`.
May import: :mod:`hpsearch.errors`, torch, numpy, scikit-learn.
"""

"""Side experiments built on the rest: the optimizer playground (2-D test functions), MGS and
its studies, and the simulated linear-α sweeps the diagnosis is calibrated on.

May import: :mod:`hpsearch.results`, :mod:`hpsearch.study`, :mod:`hpsearch.core`,
:mod:`hpsearch.errors`.
"""

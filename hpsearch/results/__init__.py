"""Results: the front analysis (Pareto front, hypervolume, hull, concave stretches), tables of
stored studies, comparisons, figures, what optuna-dashboard shows, and ``fill``.

The analysis is computed once (:mod:`~hpsearch.results.analysis`, numpy only), then drawn by
matplotlib (:mod:`~hpsearch.results.plots`) or plotly (:mod:`~hpsearch.results.publish`).
May import: :mod:`hpsearch.study`, :mod:`hpsearch.core`, :mod:`hpsearch.errors`.
"""

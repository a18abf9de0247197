"""Drift statistics as pure functions over numpy and pyarrow, one module per family: ``numeric`` (PSI, W1, KS),
``categorical`` (chi-squared, JS, unseen categories), ``divergence`` (the effect sizes), ``correction``
(multiple testing), and ``verdict`` (the rule that combines them, and the report)."""

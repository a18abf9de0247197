"""Judging a model: the metrics' intervals, the gate, the holdouts a challenger is compared on, fairness,
importance, plots and the model card (the metrics themselves are ``model.metrics``)."""

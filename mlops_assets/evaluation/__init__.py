"""Judging a model: task metrics with their weighted and interval forms, the gate, the holdouts a challenger
is compared on, plots and the model card."""

"""Watching a served model: the drift report over the inference log, online performance, what the loop
remembers about a drift, and importance weights that answer one without labels."""

"""Watching a served model: the drift report over windows of the inference log, online performance measured on
joined labels or estimated before them, the endpoint's figures, SLO, schema-break and skew checks, and what the
loop remembers about a drift. Importance weights that answer one are ``data.adaptation``."""

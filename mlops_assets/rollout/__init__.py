"""Getting a gated challenger into service: routing between champion and challenger, the canary verdict,
the rollout driver, per-arm figures, the deployment decision, the audit log and the alias history."""

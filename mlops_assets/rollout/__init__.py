"""Getting a gated challenger into service: the rollout driver and the canary verdict it reads, per-arm figures,
and the deployment decision. Routing between the arms is the endpoint's (``serving.routing``); the audit trail and
the alias history it writes are ``governance``'s."""

"""Alerts: an event of the loop announced to the spec's webhooks and programs (``delivery``), whoever raises it
(the deployment, the checks, the sensors)."""

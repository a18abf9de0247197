"""Alerts: an event of the loop (``AlertEvent``) announced in the Dagster log and to each of the spec's
``alerts`` that fires on it, a webhook (a JSON POST) or an allowed program (the JSON on its stdin).

A receiver that is down or slow never holds a run up: every delivery runs in a daemon thread, and the caller
waits at most the longest ``timeout_s`` of the alerts. A delivery that failed or did not finish by then is
logged as a warning and counted in the returned ``AlertOutcome``; nothing here raises.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field

from mlops_assets.naming import AlertEvent

WEBSERVER_URL_ENV = "DAGSTER_WEBSERVER_URL"  # where people open the Dagster UI; the alerts' links point there
DEFAULT_WEBSERVER_URL = "http://localhost:3000"


def _ui() -> str:
    return os.environ.get(WEBSERVER_URL_ENV, DEFAULT_WEBSERVER_URL).rstrip("/")


def asset_link(pipeline: str, asset: str) -> str:
    """The asset's page in the Dagster UI: a key ``[pipeline, asset]`` is the path ``/assets/pipeline/asset``."""
    return f"{_ui()}/assets/{pipeline}/{asset}"


def run_link(run_id: str) -> str:
    """The run's page in the Dagster UI."""
    return f"{_ui()}/runs/{run_id}"


@dataclass(frozen=True)
class AlertOutcome:
    """What became of one event's deliveries: the targets that took it, and why each other one did not."""

    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # target -> why


def alert_body(pipeline: str, event: AlertEvent, message: str, link: str) -> dict:
    """The JSON every receiver gets."""
    time_ = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return {"pipeline": pipeline, "event": str(event), "message": message, "link": link, "time": time_}


def send_alerts(spec, event: AlertEvent, message: str, link: str, log) -> AlertOutcome:
    """Announce ``event``: always in ``log`` (a Dagster ``context.log``), then to each alert of ``spec`` that
    fires on it, all at once; returns after every delivery ended or the longest timeout passed."""
    log.warning(f"alert {event}: {message} ({link})")
    alerts = [alert for alert in spec.alerts if event in alert.on]
    if not alerts:
        return AlertOutcome()
    body = json.dumps(alert_body(spec.name, event, message, link)).encode()
    # one slot per alert, written by its thread: None once delivered, else why not
    results: list[str | None] = [f"no answer within {alert.timeout_s:g} s" for alert in alerts]
    threads = [threading.Thread(target=_deliver, args=(a, body, results, i), daemon=True) for i, a in enumerate(alerts)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + max(alert.timeout_s for alert in alerts)
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))
    targets = [alert.webhook or alert.command[0] for alert in alerts]
    outcome = AlertOutcome(
        [t for t, why in zip(targets, results, strict=True) if why is None],
        {t: why for t, why in zip(targets, results, strict=True) if why is not None},
    )
    for target, why in outcome.failed.items():
        log.warning(f"alert {event} not delivered to {target}: {why}")
    return outcome


def _deliver(alert, body: bytes, results: list[str | None], slot: int) -> None:
    """One delivery, in its own thread: ``results[slot]`` becomes ``None`` when it worked, else the reason."""
    try:
        if alert.webhook is not None:
            headers = {"Content-Type": "application/json"}
            headers |= {name: os.environ[var] for name, var in alert.headers_from_env.items() if var in os.environ}
            request = urllib.request.Request(alert.webhook, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=alert.timeout_s) as response:
                response.read(1024)
        else:  # an argv, never a shell; the program was allowed when the spec loaded
            done = subprocess.run(
                alert.command, input=body, capture_output=True, timeout=alert.timeout_s, check=False, shell=False
            )
            if done.returncode != 0:
                raise RuntimeError(f"exited with {done.returncode}: {done.stderr[-300:].decode(errors='replace')}")
        results[slot] = None
    except Exception as exc:  # a receiver's failure is reported by the caller, never raised into a run
        results[slot] = f"{type(exc).__name__}: {exc}"

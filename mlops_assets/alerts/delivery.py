"""Alerts: an event of the loop (``AlertEvent``) announced in the Dagster log and to each of the spec's
``alerts`` that fires on it, a webhook (a JSON POST) or an allowed program (the JSON on its stdin).

A receiver that is down or slow never holds a run up: every delivery runs in a daemon thread, and the caller
waits at most the longest ``timeout_s`` of the alerts. A delivery that failed or did not finish by then is
logged as a warning and counted in the returned ``AlertOutcome``; nothing here raises.

A webhook gets its headers only from variables the operator allowed, is never sent to a name that resolves
to a link-local or cloud metadata address, and a redirect is not followed: a receiver answering 302 would
otherwise have the request, headers and all, sent again to a host of its choosing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mlops_assets.naming import AlertEvent
from mlops_assets.spec.operations import ALERT_VARIABLES_ENV, allowed_alert_variable, forbidden_address

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

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


def send_alerts(spec: PipelineSpec, event: AlertEvent, message: str, link: str, log) -> AlertOutcome:
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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises the 3xx as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirect)


def _deliver(alert, body: bytes, results: list[str | None], slot: int) -> None:
    """One delivery, in its own thread: ``results[slot]`` becomes ``None`` when it worked, else the reason."""
    try:
        if alert.webhook is not None:
            _post(alert, body)
        else:  # an argv, never a shell; the program was allowed when the spec loaded
            done = subprocess.run(
                alert.command, input=body, capture_output=True, timeout=alert.timeout_s, check=False, shell=False
            )
            if done.returncode != 0:
                raise RuntimeError(f"exited with {done.returncode}: {done.stderr[-300:].decode(errors='replace')}")
        results[slot] = None
    except Exception as exc:  # a receiver's failure is reported by the caller, never raised into a run
        results[slot] = f"{type(exc).__name__}: {exc}"


def _post(alert, body: bytes) -> None:
    """POST ``body`` to the alert's webhook; raises why it was not taken. The spec was checked when it loaded;
    the variables and the addresses are checked again here, as they are now."""
    refused = sorted(var for var in alert.headers_from_env.values() if not allowed_alert_variable(var))
    if refused:
        raise PermissionError(f"{refused} may not be sent: not MLOPS_ALERT_* nor listed in {ALERT_VARIABLES_ENV}")
    parts = urlsplit(alert.webhook)
    if any(forbidden_address(address) for address in _addresses(parts.hostname, parts.port)):
        raise PermissionError(f"{parts.hostname} resolves to a link-local or cloud metadata address")
    headers = {"Content-Type": "application/json"}
    headers |= {name: os.environ[var] for name, var in alert.headers_from_env.items() if var in os.environ}
    request = urllib.request.Request(alert.webhook, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=alert.timeout_s) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            where = urlsplit(exc.headers.get("Location") or "").hostname or "elsewhere"
            raise RuntimeError(f"answered {exc.code} towards {where}; redirects are not followed") from None
        raise


def _addresses(host: str, port: int | None) -> list[str]:
    """The addresses ``host`` resolves to; none when it does not resolve here (a proxy may still reach it)."""
    try:
        return [info[4][0] for info in socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)]
    except OSError:
        return []

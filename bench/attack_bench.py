"""Every attack of bench/attacks/ run against the real code, side by side: expected, observed, held or broken.

Each attack gets a fresh temporary folder and runs the real surfaces (the endpoint over loopback HTTP, the CLI,
the spec loader, the audit trail on a real store). Usage: python bench/attack_bench.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import pkgutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import attacks  # noqa: E402
from attacks.attack import Attack, Outcome  # noqa: E402
from serving import machine_line  # noqa: E402


def every_attack() -> list[Attack]:
    found = []
    for module in sorted(pkgutil.iter_modules(attacks.__path__), key=lambda m: m.name):
        if module.name != "attack":
            found += importlib.import_module(f"attacks.{module.name}").ATTACKS
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="attack names (a prefix is enough)")
    args = parser.parse_args()
    chosen = [a for a in every_attack() if not args.only or any(a.name.startswith(p) for p in args.only)]
    when = dt.datetime.now(dt.UTC).isoformat(timespec="minutes")
    print(machine_line(when, ("dagster", "mlflow", "uvicorn", "httptools"), os.getloadavg()[0]))
    print("\n| attack | expected | observed | verdict | s |\n|---|---|---|---|---|")
    broken = 0
    for attack in chosen:
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as folder:
            try:
                outcome = attack.run(Path(folder))
            except Exception as exc:  # an attack that crashes the harness is a finding too
                outcome = Outcome(f"the attack itself failed: {type(exc).__name__}: {exc}"[:300], False)
        broken += not outcome.held
        verdict = "held" if outcome.held else "BROKEN"
        print(
            f"| {attack.name} | {attack.expected} | {outcome.observed} | {verdict} | {time.monotonic() - started:.1f} |"
        )
    print(f"\n{len(chosen) - broken} held, {broken} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())

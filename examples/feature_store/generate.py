"""Writes the example's data files (seeded, so the committed files are what it writes):

    .venv/bin/python examples/feature_store/generate.py

Customers change plan and spend over a year; usage arrives every two weeks, engagement every three. The churn
and upsell examples are drawn at random times, so they fall between feature updates: the join must pick, for
each, the value that was current then. Each customer has a hidden propensity that drives both its features and
its labels, so the view features carry signal.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent / "data"  # the examples, beside the specs
VIEWS = Path(__file__).parent / "feature_views" / "data"  # the views' sources, inside the views' folder
START = pd.Timestamp("2025-01-01")
CUSTOMERS, DAYS = 200, 360


def stamp(days: np.ndarray) -> list[str]:
    return [(START + pd.Timedelta(minutes=int(d * 1440))).isoformat() for d in days]


def main() -> None:
    rng = np.random.default_rng(7)
    HERE.mkdir(exist_ok=True)
    VIEWS.mkdir(exist_ok=True)
    propensity = rng.normal(size=CUSTOMERS + 1)
    rows = []
    for customer in range(1, CUSTOMERS + 1):  # a profile update every 30-90 days
        day = rng.uniform(0, 20)
        while day < DAYS:
            price = round(float(np.clip(20 + 8 * propensity[customer] + rng.normal(0, 4), 5, 60)), 2)
            rows.append((customer, day, price, round(float(rng.gamma(2, 30 + 10 * propensity[customer] ** 2)), 2)))
            day += rng.uniform(30, 90)
    profile = pd.DataFrame(rows, columns=["customer_id", "day", "plan_price", "spend"])
    profile.insert(1, "updated_at", stamp(profile.pop("day").to_numpy()))
    profile.to_csv(VIEWS / "customer_profile.csv", index=False)

    weekly = [(c, d + rng.uniform(0, 7)) for c in range(1, CUSTOMERS + 1) for d in range(0, DAYS, 14)]
    usage = pd.DataFrame(weekly, columns=["customer_id", "day"])
    usage["sessions"] = rng.poisson(np.exp(1.5 - 0.4 * propensity[usage["customer_id"]]))
    usage["support_calls"] = rng.poisson(np.exp(-1 + 0.5 * propensity[usage["customer_id"]]))
    usage.insert(1, "logged_at", stamp(usage.pop("day").to_numpy()))
    usage.to_csv(VIEWS / "usage.csv", index=False)

    weekly = [(c, d + rng.uniform(0, 7)) for c in range(1, CUSTOMERS + 1) for d in range(0, DAYS, 21)]
    engagement = pd.DataFrame(weekly, columns=["customer_id", "day"])
    engagement["page_views"] = rng.poisson(np.exp(2 + 0.3 * propensity[engagement["customer_id"]]))
    engagement.insert(1, "seen_at", stamp(engagement.pop("day").to_numpy()))
    engagement.to_csv(VIEWS / "engagement.csv", index=False)

    for name, target, sign in (("churn", "churned", -1.0), ("upsell", "upgraded", 1.0)):
        customer = rng.integers(1, CUSTOMERS + 1, 500)
        days = rng.uniform(0, DAYS + 20, 500)  # some before a customer's first update, some long after its last
        label = rng.random(500) < 1 / (1 + np.exp(-(sign * 1.5 * propensity[customer])))
        examples = pd.DataFrame(
            {
                "example_id": [f"{name[0].upper()}{i:04d}" for i in range(500)],
                "customer_id": customer,
                "example_time": stamp(days),
                "region": rng.choice(["north", "south", "east", "west"], 500),
                target: np.where(label, "yes", "no"),
            }
        )
        examples.to_csv(HERE / f"{name}_examples.csv", index=False)


if __name__ == "__main__":
    main()

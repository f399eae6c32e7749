"""The bundled demo data: a generated, realistic customer-churn table.

Generated from a fixed seed (no files shipped, no network). The second batch has drift
injected on purpose: higher monthly charges, more support calls, a shifted region mix and a
payment method never seen in training.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

REGIONS = ["north", "south", "east", "west", "central", "coastal", "mountain", "metro"]
PLANS = ["basic", "standard", "premium", "family"]
CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENTS = ["card", "bank-transfer", "paypal", "invoice"]


def churn_table(n: int = 50_000, seed: int = 7, drifted: bool = False) -> pa.Table:
    """A churn table with numeric, categorical, boolean and datetime columns and missing values.

    Parameters
    ----------
    n : int
        Rows.
    seed : int
        Random seed; the same seed gives the same table.
    drifted : bool
        Inject drift (the "current" batch of the quickstart).
    """
    rng = np.random.default_rng(seed + (1000 if drifted else 0))
    region_p = np.array([0.16, 0.14, 0.14, 0.14, 0.12, 0.1, 0.08, 0.12])
    if drifted:
        region_p = np.array([0.06, 0.1, 0.1, 0.1, 0.12, 0.1, 0.08, 0.34])
    region = rng.choice(REGIONS, size=n, p=region_p)
    plan = rng.choice(PLANS, size=n, p=[0.35, 0.35, 0.2, 0.1])
    contract = rng.choice(CONTRACTS, size=n, p=[0.55, 0.25, 0.2])
    pay_p = [0.45, 0.25, 0.2, 0.1]
    payment = rng.choice(PAYMENTS, size=n, p=pay_p).astype(object)
    if drifted:
        payment[rng.random(n) < 0.08] = "crypto"  # a category the model never saw
    tenure = np.clip(rng.gamma(2.0, 14.0, size=n), 0, 72).round()
    base = {"basic": 25.0, "standard": 55.0, "premium": 85.0, "family": 105.0}
    monthly = np.array([base[p] for p in plan]) + rng.normal(0, 8, size=n)
    if drifted:
        monthly = monthly * 1.18 + 6.0
    monthly = np.round(np.clip(monthly, 10, None), 2)
    total = np.round(monthly * np.maximum(tenure, 1) * rng.uniform(0.9, 1.05, size=n), 2)
    calls = rng.poisson(1.2 + (1.6 if drifted else 0.0), size=n).astype(np.float64)
    age = np.round(rng.normal(44, 14, size=n).clip(18, 90))
    usage = np.round(rng.lognormal(2.0, 0.8, size=n), 3)
    paperless = rng.random(n) < 0.6
    days_ago = (tenure * 30.4 + rng.uniform(0, 30, size=n)).astype("timedelta64[D]")
    today = np.datetime64("2026-11-01") if not drifted else np.datetime64("2026-12-01")
    signup = (today - days_ago).astype("datetime64[ns]")

    logit = (-1.2 - 0.045 * tenure + 0.018 * (monthly - 60) + 0.35 * calls
             + np.where(contract == "month-to-month", 1.1, np.where(contract == "one-year", -0.2, -1.0))
             + np.where(payment == "invoice", 0.45, 0.0) - 0.01 * (age - 44)
             + np.where(region == "metro", 0.25, 0.0) + 0.15 * paperless)
    churn = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    # missing values, as real exports have them
    total[rng.random(n) < 0.02] = np.nan
    age[rng.random(n) < 0.05] = np.nan
    usage[rng.random(n) < 0.03] = np.nan
    payment[rng.random(n) < 0.03] = None

    return pa.table({
        "customer_id": pa.array([f"C{seed:02d}{'D' if drifted else 'R'}{i:07d}" for i in range(n)]),
        "tenure_months": tenure,
        "monthly_charges": monthly,
        "total_charges": total,
        "support_calls": calls,
        "age": age,
        "data_usage_gb": usage,
        "region": pa.array(region),
        "plan": pa.array(plan),
        "contract": pa.array(contract),
        "payment_method": pa.array(list(payment), type=pa.string()),
        "paperless_billing": pa.array(paperless),
        "signup_date": pa.array(signup, type=pa.timestamp("ns")),
        "churn": churn,
    })


NUMERIC = ["tenure_months", "monthly_charges", "total_charges", "support_calls", "age", "data_usage_gb"]
CATEGORICAL = ["region", "plan", "contract", "payment_method"]
TARGET = "churn"
ID = "customer_id"

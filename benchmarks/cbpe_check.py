"""CBPE's estimate next to the realized churn rate and ROC-AUC, per period, for a trained home.

    uv run python benchmarks/cbpe_check.py --home HOME [--home HOME2 ...]

Each home's champion logged its reference sample: the held-out validation periods (after the
window its calibration was fitted on) with predictions and realized outcomes. Per period the
estimate is computed from the predictions alone (``monitoring.cbpe.estimate``) and set beside
the realized figures (``monitoring.performance.realized_metrics``), with the AUC's sampling
error (Hanley-McNeil) so a gap can be read against the noise of the period's size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982): the sampling error of an ROC-AUC on this many cases."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives
    )
    return float(np.sqrt(var))


def cbpe_table(frame: pd.DataFrame, label: str = "") -> pd.DataFrame:
    """One row per period of a reference frame: estimate vs realized."""
    from monitoring.cbpe import estimate
    from monitoring.performance import realized_metrics

    rows = []
    for when, group in frame.groupby("as_of"):
        est, real = estimate(group), realized_metrics(group)
        positives = int(group["churned"].sum())
        rows.append(
            {
                "home": label,
                "period": str(pd.Timestamp(when).date()),
                "n": len(group),
                "expected_churn_rate": est["expected_churn_rate"],
                "churn_rate": real["churn_rate"],
                "expected_roc_auc": est["expected_roc_auc"],
                "roc_auc": real["roc_auc"],
                "auc_se": auc_standard_error(real["roc_auc"], positives, len(group) - positives),
                "expected_ece": est["expected_calibration_error"],
                "ece": real["calibration_error"],
            }
        )
    return pd.DataFrame(rows)


def summarize(table: pd.DataFrame) -> str:
    gap_auc = (table["expected_roc_auc"] - table["roc_auc"]).abs()
    gap_rate = (table["expected_churn_rate"] - table["churn_rate"]).abs()
    within = (gap_auc <= 2 * table["auc_se"]).sum()
    return (
        f"|estimate - realized| over {len(table)} periods: ROC-AUC mean {gap_auc.mean():.4f} "
        f"(max {gap_auc.max():.4f}; {within}/{len(table)} within 2 sampling errors); churn "
        f"rate mean {gap_rate.mean():.4f} (max {gap_rate.max():.4f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, nargs="+", required=True)
    args = parser.parse_args(argv)

    from monitoring.reference import load_reference
    from npsrisk.settings import load_settings

    tables = []
    for home in args.home:
        reference = load_reference(load_settings(home=home))
        label = f"{home.parent.name}/{home.name} v{reference.version}"
        tables.append(cbpe_table(reference.frame, label))
    table = pd.concat(tables, ignore_index=True)
    pd.set_option("display.width", 200)
    print(table.round(4).to_string(index=False))
    print(summarize(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Drift detection and CBPE on demo companies: detection rate, named segment, false alarms.

    uv run python benchmarks/drift_detection.py --seeds 1 2 3 4 5 --customers 2000 --out /tmp/dd

For each seed: a calm company (no drift event) is generated and a model trained on it, so
its reference is the calm validation window; the same seed is generated again with
``--drift-event`` (an incident in region=emea for a quarter). `monitor drift`'s logic then
compares, at an as-of date inside the incident (``--as-of``), the calm company and the
drifted one against the calm model's reference: the calm run must raise no alarm, the drifted
one must, naming region=emea first. It also prints the CBPE estimate next to the realized
churn rate and ROC-AUC for each validation period (held out, after the calibration window).
Data, homes and reports are kept under ``--out`` and reused by a second run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--as-of", default="2025-05-31")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    from cbpe_check import cbpe_table, summarize

    from demo.generator import DemoConfig, find_ground_truth, make_demo
    from monitoring.drift_report import run_drift
    from monitoring.reference import load_reference
    from monitoring.windows import window_from_data
    from npsrisk.settings import load_settings
    from training.pipeline import train

    rows, cbpe_tables = [], []
    as_of = pd.Timestamp(args.as_of)
    for seed in args.seeds:
        base = args.out / f"seed{seed}"
        calm, drifted = base / "calm", base / "drift"
        for path, drift in ((calm, False), (drifted, True)):
            if not (path / "customers.parquet").is_file():
                make_demo(DemoConfig(customers=args.customers, seed=seed, drift_event=drift), path)
        settings = load_settings(home=base / "home")
        if not settings.mlflow_db_path.is_file():
            train(calm, settings, truth_path=find_ground_truth(calm))
        reference = load_reference(settings)
        for name, path in (("calm", calm), ("drift", drifted)):
            started = time.perf_counter()
            window = window_from_data(path, reference, as_of)
            result = run_drift(
                settings, reference, window, settings.reports_path / "drift" / f"{name}-{seed}"
            )
            s = result.summary
            moved = s["segments_moved"]
            rows.append(
                {
                    "seed": seed,
                    "company": name,
                    "verdict": s["verdict"],
                    "first_segment": f"{moved[0]['segment']}={moved[0]['value']}" if moved else "",
                    "segments_moved": len(moved),
                    "share_drifted": s["share_drifted"],
                    "churn_prob_score": next(
                        (
                            p["score"]
                            for p in s["predictions"]
                            if p["column"] == "churn_probability"
                        ),
                        None,
                    ),
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        cbpe_tables.append(cbpe_table(reference.frame, f"seed{seed}"))
    table = pd.DataFrame(rows)
    cbpe = pd.concat(cbpe_tables, ignore_index=True)
    pd.set_option("display.width", 200)
    print("\nDrift verdicts at", args.as_of, f"({args.customers} customers per company)")
    print(table.to_string(index=False))
    drift_runs = table[table["company"] == "drift"]
    calm_runs = table[table["company"] == "calm"]
    detected = (drift_runs["verdict"] == "drift").mean()
    named = (drift_runs["first_segment"] == "region=emea").mean()
    false_alarms = (calm_runs["verdict"] == "drift").mean()
    print(
        f"\ndetection rate {detected:.0%} ({int((drift_runs['verdict'] == 'drift').sum())}/"
        f"{len(drift_runs)}), region=emea named first {named:.0%}, false-alarm rate "
        f"{false_alarms:.0%} ({int((calm_runs['verdict'] == 'drift').sum())}/{len(calm_runs)})"
    )
    print("\nCBPE estimate vs realized, per validation period (held out, after calibration)")
    print(cbpe.round(4).to_string(index=False))
    print(summarize(cbpe))
    table.to_csv(args.out / "drift_verdicts.csv", index=False)
    cbpe.to_csv(args.out / "cbpe.csv", index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

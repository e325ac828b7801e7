"""Held-out metrics of the models with and without text features, on one demo company.

    uv run python benchmarks/text_lift.py --customers 5000 --seed 7
    uv run python benchmarks/text_lift.py --customers 20000 --seed 7 --out /tmp/lift20k

Generates the demo company (or reuses ``--out/data``), then trains twice with default settings
except ``text.features`` (off, then on), each into its own home under ``--out``, and prints
each run's held-out table: LightGBM, the baselines (base rate, last NPS carried forward,
logistic/ridge) and the oracle from the demo's ground truth, on the same validation window.
Not a speed benchmark: the figures are model quality, as ``npsrisk train`` reports them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="keep data and homes here")
    args = parser.parse_args(argv)

    from demo.generator import DemoConfig, find_ground_truth, make_demo
    from npsrisk.settings import load_settings
    from training.pipeline import train

    root = args.out or Path(tempfile.mkdtemp(prefix="npsrisk-text-lift-"))
    data = root / "data"
    try:
        if not (data / "customers.parquet").is_file():
            make_demo(DemoConfig(customers=args.customers, seed=args.seed), data)
        pd.set_option("display.width", 200)
        pd.set_option("display.max_columns", 20)
        pd.set_option("display.precision", 4)
        summary = {}
        for text in (False, True):
            home = root / f"home-text-{'on' if text else 'off'}"
            shutil.rmtree(home, ignore_errors=True)
            settings = load_settings(home=home, text={"features": text})
            start = time.perf_counter()
            result = train(data, settings, truth_path=find_ground_truth(data))
            table = result.headline
            print(
                f"\n=== text features {'on' if text else 'off'} "
                f"({time.perf_counter() - start:.0f} s to train)"
            )
            print(
                table[
                    [
                        ("churn", "roc_auc"),
                        ("churn", "pr_auc"),
                        ("nps", "mae"),
                        ("nps", "detractor_roc_auc"),
                        ("nps", "macro_f1"),
                    ]
                ].to_string()
            )
            summary[text] = table.loc["lightgbm"]
        auc = {t: summary[t][("churn", "roc_auc")] for t in summary}
        mae = {t: summary[t][("nps", "mae")] for t in summary}
        print(
            f"\nLightGBM with text vs without: churn ROC-AUC {auc[True]:.4f} vs {auc[False]:.4f} "
            f"({auc[True] - auc[False]:+.4f}), NPS MAE {mae[True]:.4f} vs {mae[False]:.4f} "
            f"({mae[True] - mae[False]:+.4f}); {args.customers:,} customers, seed {args.seed}"
        )
        return 0
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Model quality across demo worlds and seeds: every head, candidate and baseline.

For each world (``demo.generator.WORLDS``) and seed, a demo company is generated, and the
training pipeline's own ``fit_and_evaluate`` fits candidates and baselines, chooses on the
inner windows and scores the outer window. Reported per run:

* churn ROC-AUC on every customer active at the outer window's as-of dates, NPS MAE on that
  window's survey respondents, plus PR-AUC, detractor AUC, macro-F1 and calibration errors;
* served minus the best baseline (the baseline best on that very window, so the comparison is
  conservative), with a paired bootstrap 95% interval that resamples customers (a customer's
  rows at the window's several dates move together);
* the served churn AUC as a share of the oracle's (the generator's true probabilities).

    uv run python benchmarks/model_quality.py                 # 3 worlds x 3 seeds x 3,000
    uv run python benchmarks/model_quality.py --customers 1500 --seeds 1 --worlds default
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from demo.generator import WORLDS, DemoConfig, find_ground_truth, make_demo
from npsrisk.settings import load_settings
from training.evaluation import expected_calibration_error
from training.pipeline import fit_and_evaluate

BASELINES = ("base_rate", "last_nps", "logistic")
RESAMPLES = 1000


def weighted_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    """ROC-AUC with row weights (bootstrap counts), ties counted half."""
    order = np.argsort(p, kind="stable")
    y, p, w = y[order], p[order], w[order]
    neg = w * (1 - y)
    pos = w * y
    # Group ties: negatives strictly below plus half the tied negatives.
    _, start, counts = np.unique(p, return_index=True, return_counts=True)
    neg_group = np.add.reduceat(neg, start)
    below = np.cumsum(neg_group) - neg_group
    group = np.repeat(np.arange(len(start)), counts)
    credit = below[group] + 0.5 * neg_group[group]
    total = pos.sum() * neg.sum()
    return float((pos * credit).sum() / total) if total > 0 else float("nan")


def customer_weights(customers: np.ndarray, rng: np.random.Generator, draws: int) -> np.ndarray:
    """draws x rows: each row's weight is how often its customer was drawn."""
    codes, uniques = pd.factorize(customers)
    counts = rng.multinomial(len(uniques), np.full(len(uniques), 1 / len(uniques)), size=draws)
    return counts[:, codes].astype(float)


def paired_interval(metric, served: np.ndarray, other: np.ndarray, weights: np.ndarray):
    diffs = np.array([metric(served, w) - metric(other, w) for w in weights])
    return np.nanpercentile(diffs, [2.5, 97.5])


def run_one(world: str, seed: int, customers: int, root: Path) -> list[dict]:
    data = root / f"{world}-{seed}"
    make_demo(DemoConfig(customers=customers, seed=seed, world=world), data)
    settings = load_settings(home=root / f"home-{world}-{seed}")
    started = time.perf_counter()
    done = fit_and_evaluate(
        data, settings, root / f"report-{world}-{seed}", None, find_ground_truth(data)
    )
    seconds = time.perf_counter() - started
    valid, preds = done.valid, done.predictions
    rng = np.random.default_rng(seed)
    rows = []
    chosen = {h: c.chosen for h, c in done.fitted.choices.items()}
    overall = done.metrics[done.metrics["segment"] == "all"]

    def value(model: str, target: str, metric: str) -> float:
        hit = overall[
            (overall["model"] == model)
            & (overall["target"] == target)
            & (overall["metric"] == metric)
        ]
        return float(hit["value"].iloc[0]) if len(hit) else float("nan")

    models = [
        m
        for m in preds
        if m in ("served", "oracle") or m in BASELINES or m.startswith("candidate_")
    ]
    for model in models:
        row = {"world": world, "seed": seed, "model": model}
        for target, metric in (
            ("churn", "roc_auc"),
            ("churn", "pr_auc"),
            ("churn", "calibration_error"),
            ("nps", "mae"),
            ("nps", "detractor_roc_auc"),
            ("nps", "macro_f1"),
        ):
            row[f"{target}.{metric}"] = value(model, target, metric)
        rows.append(row)

    # Served minus best baseline, paired bootstrap over customers.
    summary = {
        "world": world,
        "seed": seed,
        "model": "served-vs-best",
        "seconds": seconds,
        "chosen": ",".join(f"{h}={c}" for h, c in chosen.items()),
    }
    if "churn" in done.heads:
        y = valid["churned"].to_numpy(dtype=float)
        best = max(BASELINES, key=lambda b: value(b, "churn", "roc_auc"))
        weights = customer_weights(valid["customer_id"].to_numpy(), rng, RESAMPLES)
        s, b = (
            preds["served"]["churn_probability"].to_numpy(),
            preds[best]["churn_probability"].to_numpy(),
        )
        lo, hi = paired_interval(lambda p, w: weighted_auc(y, p, w), s, b, weights)
        summary.update(
            {
                "churn.best_baseline": best,
                "churn.auc_diff": value("served", "churn", "roc_auc")
                - value(best, "churn", "roc_auc"),
                "churn.auc_diff_lo": lo,
                "churn.auc_diff_hi": hi,
                "churn.oracle_ratio": value("served", "churn", "roc_auc")
                / value("oracle", "churn", "roc_auc"),
                "churn.rows": len(y),
                "churn.positives": int(y.sum()),
                "churn.distinct_share": len(np.unique(s)) / len(s),
            }
        )
    if "nps" in done.heads:
        answered = valid["responded"].to_numpy()
        score = valid["nps_score"].to_numpy(dtype=float)[answered]
        ids = valid["customer_id"].to_numpy()[answered]
        best = min(BASELINES, key=lambda b: value(b, "nps", "mae"))
        weights = customer_weights(ids, rng, RESAMPLES)
        s = preds["served"]["predicted_nps"].to_numpy()[answered]
        b = preds[best]["predicted_nps"].to_numpy()[answered]
        mae = lambda p, w: float(np.average(np.abs(p - score), weights=w))  # noqa: E731
        lo, hi = paired_interval(mae, s, b, weights)
        probs = preds["served"][["p_detractor", "p_passive", "p_promoter"]].to_numpy()[answered]
        codes = np.select([score <= 6, score <= 8], [0, 1], 2)
        summary.update(
            {
                "nps.best_baseline": best,
                "nps.mae_diff": value("served", "nps", "mae") - value(best, "nps", "mae"),
                "nps.mae_diff_lo": lo,
                "nps.mae_diff_hi": hi,
                "nps.respondents": int(answered.sum()),
                "nps.category_ece": float(
                    np.mean(
                        [
                            expected_calibration_error((codes == k).astype(float), probs[:, k])
                            for k in range(3)
                        ]
                    )
                ),
            }
        )
    rows.append(summary)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--worlds", nargs="+", default=list(WORLDS))
    parser.add_argument("--out", type=Path, default=None, help="Write the tables as CSV here.")
    args = parser.parse_args()
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 40)
    pd.set_option("display.max_rows", 500)
    started = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:  # every world at one seed before the next seed
            for world in args.worlds:
                new = run_one(world, seed, args.customers, Path(tmp))
                rows += new
                # Each run's rows as soon as they exist, so a long benchmark is never lost.
                elapsed = time.perf_counter() - started
                print(f"\n# {world} seed {seed} ({elapsed:.0f} s)", flush=True)
                frame = pd.DataFrame(new).dropna(axis=1, how="all").round(4)
                print(frame.to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    models = table[table["model"] != "served-vs-best"].dropna(axis=1, how="all")
    summary = table[table["model"] == "served-vs-best"].dropna(axis=1, how="all")
    print(
        "\n## Every model on the outer window (churn: all customers active at its as-of dates;"
        " NPS: its respondents)\n"
    )
    print(models.round(4).to_string(index=False))
    print("\n## Served minus best baseline, paired bootstrap 95% interval over customers\n")
    print(summary.drop(columns=["model"]).round(4).to_string(index=False))
    print("\n## Means over seeds\n")
    numeric = models.drop(columns=["seed"]).groupby(["world", "model"]).mean(numeric_only=True)
    print(numeric.round(4).to_string())
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        models.to_csv(args.out / "models.csv", index=False)
        summary.to_csv(args.out / "served_vs_best.csv", index=False)


if __name__ == "__main__":
    main()

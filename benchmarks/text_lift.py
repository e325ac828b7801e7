"""The text features' lift, measured on intent phrasings no training window or seed term saw.

For each demo world and seed, a company is generated whose intent messages use held-out
phrasings (demo/phrases.py ``HELDOUT_INTENT_PHRASES``) from ``horizon`` days before the first
outer validation date on, so every feature of the outer window reads held-out words and no
training row ever did. The pipeline (``fit_and_evaluate``) then runs twice on the same rows,
with and without text features (``text.selection`` off, to measure the features themselves),
and reports for the served model:

* churn ROC-AUC (every customer active at the outer as-of dates) and detractor ROC-AUC (that
  window's survey respondents), with text minus without, paired bootstrap 95% interval
  (customers resampled); and text minus text without the intent themes (a third run whose
  taxonomy disables them): the intents' own share of the lift;
* the choice ``text.selection`` makes on the inner windows (kept or dropped) for that data;
* the theme detector's recall on the held-out intent messages in the data and on the blind
  list (written after the detector was frozen), and how often it fires on denials.

    uv run python benchmarks/text_lift.py                         # 3 worlds x 1 seed x 3,000
    uv run python benchmarks/text_lift.py --worlds default --seeds 7 --customers 2000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_quality import customer_weights, weighted_auc

from demo import phrases
from demo.generator import (
    WORLDS,
    DemoConfig,
    find_ground_truth,
    find_text_truth,
    make_demo,
    month_ends,
)
from npsrisk.settings import load_settings
from text_analytics.signals import extract_customer_texts
from text_analytics.themes import code_themes
from training.pipeline import calibration_rows, fit_and_evaluate
from training.text_selection import choose_text_features

RESAMPLES = 1000


def heldout_start(cfg: DemoConfig, horizon: int, validation_snapshots: int) -> pd.Timestamp:
    """``horizon`` days before the first outer validation as-of date (month ends, as the
    pipeline picks them): training rows end before it, outer features start after it."""
    last_labelled = cfg.end - pd.Timedelta(days=horizon)
    dates = [d for d in month_ends(pd.Timestamp(cfg.start), cfg.end) if d <= last_labelled]
    return dates[-validation_snapshots] - pd.Timedelta(days=horizon) + pd.Timedelta(days=1)


def detector_recall(data: Path) -> dict[str, float]:
    """Share of the data's held-out intent messages coded with their intent theme."""
    tables = {n: pd.read_parquet(data / f"{n}.parquet") for n in ("chats",)}
    texts = extract_customer_texts(tables)
    truth = pd.read_parquet(find_text_truth(data))
    truth = truth[truth["heldout_phrasing"].fillna(False).astype(bool)]
    merged = texts.merge(truth, on=["source", "key"])
    intent = merged["themes"].map(
        lambda t: next((x for x in str(t).split("|") if x in phrases.INTENT_THEMES), "")
    )
    coded = code_themes(merged["text"])
    said = intent != ""
    hits = [bool(coded[t].iloc[i]) for i, t in enumerate(intent) if t]
    fired_on_denial = coded.loc[~said.to_numpy(), list(phrases.INTENT_THEMES)].any(axis=1)
    return {
        "heldout_messages": int(said.sum()),
        "heldout_recall": float(np.mean(hits)) if hits else float("nan"),
        "denials": int((~said).sum()),
        "denial_false_alarms": float(fired_on_denial.mean()) if len(fired_on_denial) else 0.0,
    }


def blind_recall() -> float:
    rows = [(t, k) for k, v in phrases.BLIND_INTENT_PHRASES.items() for t, _ in v]
    coded = code_themes([t.format(c="Zendrix") for t, _ in rows])
    return float(np.mean([bool(coded[k].iloc[i]) for i, (_, k) in enumerate(rows)]))


def run_one(world: str, seed: int, customers: int, root: Path) -> dict:
    settings = load_settings(home=root / "probe")
    horizon = settings.training.horizon_days
    base = DemoConfig(customers=customers, seed=seed, world=world)
    start = heldout_start(base, horizon, settings.training.validation_snapshots)
    cfg = DemoConfig(customers=customers, seed=seed, world=world, intent_heldout_from=start.date())
    data = root / f"data-{world}-{seed}"
    make_demo(cfg, data)
    row: dict = {"world": world, "seed": seed, "heldout_from": str(start.date())}
    row.update(detector_recall(data))
    # A taxonomy without the intent themes: what the other text features alone bring.
    no_intents = root / "no-intents.yaml"
    no_intents.write_text(
        "themes:\n" + "".join(f"  {t}:\n    disable: true\n" for t in phrases.INTENT_THEMES)
    )
    done = {}
    for name, text in (
        ("on", {"features": True}),
        ("off", {"features": False}),
        ("no_intents", {"features": True, "taxonomy_path": no_intents}),
    ):
        home = root / f"home-{world}-{seed}-{name}"
        shutil.rmtree(home, ignore_errors=True)
        s = load_settings(home=home, text={**text, "selection": False})
        started = time.perf_counter()
        done[name] = fit_and_evaluate(data, s, home / "report", None, find_ground_truth(data))
        row[f"seconds_{name}"] = round(time.perf_counter() - started)
    on = done["on"]
    if on.data.plan.text_themes:
        choice = choose_text_features(
            settings,
            on.data.plan,
            on.frame,
            on.data.split,
            on.heads,
            on.horizon,
            calibration_rows(on.frame, settings),
        )
        row["selection"] = "kept" if choice.keep else "dropped"
        row.update({f"inner_delta_{h}": d for h, d in choice.deltas.items()})
    keys = ["customer_id", "as_of"]
    merged = on.valid[[*keys, "churned", "responded", "nps_score"]].copy()
    for name, run in done.items():
        p = run.predictions["served"].copy()
        p[keys] = run.valid[keys].to_numpy()
        merged = merged.merge(
            p[[*keys, "churn_probability", "p_detractor"]].rename(
                columns={"churn_probability": f"churn_{name}", "p_detractor": f"det_{name}"}
            ),
            on=keys,
            validate="one_to_one",
        )
    rng = np.random.default_rng(seed)
    for target, mask, y, column in (
        ("churn", np.ones(len(merged), bool), merged["churned"], "churn"),
        (
            "detractor",
            merged["responded"].to_numpy(bool),
            merged["nps_score"] <= 6,
            "det",
        ),
    ):
        yy = y.to_numpy(dtype=float)[mask]
        a, b = merged[f"{column}_on"].to_numpy()[mask], merged[f"{column}_off"].to_numpy()[mask]
        c = merged[f"{column}_no_intents"].to_numpy()[mask]
        ones = np.ones(len(yy))
        row[f"{target}_auc_text"] = weighted_auc(yy, a, ones)
        row[f"{target}_auc_no_text"] = weighted_auc(yy, b, ones)
        row[f"{target}_auc_text_no_intents"] = weighted_auc(yy, c, ones)
        weights = customer_weights(merged["customer_id"].to_numpy()[mask], rng, RESAMPLES)
        for suffix, other in (("", b), ("_of_intents", c)):
            diffs = [weighted_auc(yy, a, w) - weighted_auc(yy, other, w) for w in weights]
            lo, hi = np.nanpercentile(diffs, [2.5, 97.5])
            row[f"{target}_lift{suffix}"] = row[f"{target}_auc_text"] - weighted_auc(
                yy, other, ones
            )
            row[f"{target}_lift{suffix}_lo"], row[f"{target}_lift{suffix}_hi"] = lo, hi
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    parser.add_argument("--worlds", nargs="+", default=list(WORLDS))
    parser.add_argument("--out", type=Path, default=None, help="keep data and homes here")
    args = parser.parse_args(argv)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 40)
    root = args.out or Path(tempfile.mkdtemp(prefix="npsrisk-text-lift-"))
    rows = []
    try:
        print(f"detector recall on the blind intent phrasings: {blind_recall():.3f}", flush=True)
        for seed in args.seeds:
            for world in args.worlds:
                rows.append(run_one(world, seed, args.customers, root))
                print(pd.DataFrame(rows[-1:]).round(4).T.to_string(header=False), flush=True)
        table = pd.DataFrame(rows)
        print("\n## Text features' lift on held-out intent phrasings (served model)\n")
        columns = [
            "world",
            "seed",
            "selection",
            "churn_auc_text",
            "churn_auc_no_text",
            "churn_lift",
            "churn_lift_lo",
            "churn_lift_hi",
            "detractor_auc_text",
            "detractor_auc_no_text",
            "detractor_lift",
            "detractor_lift_lo",
            "detractor_lift_hi",
            "churn_lift_of_intents",
            "churn_lift_of_intents_lo",
            "churn_lift_of_intents_hi",
            "heldout_recall",
            "denial_false_alarms",
        ]
        print(table[[c for c in columns if c in table]].round(4).to_string(index=False))
        return 0
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

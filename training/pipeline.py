"""`npsrisk train`: contract tables -> snapshots -> models -> MLflow run, registry and gate."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from features.build import FeaturePlan, plan_features
from features.catalog import learn_catalog
from features.validation import ValidatedTables
from monitoring.reference import log_reference
from npsrisk.outputs import new_report_dir, utc_stamp
from npsrisk.settings import Settings
from text_analytics.signals import TextScorer
from training import plots
from training.baselines import BaseRateBaseline, LastNpsBaseline, LinearBaseline
from training.evaluation import (
    evaluate_predictions,
    headline,
    oracle_predictions,
    primary_metrics,
    validation_metrics,
)
from training.models import (
    FeatureEncoder,
    NpsModel,
    ResponseModel,
    describe_scorer,
    lightgbm_params,
    monotone_vector,
)
from training.pyfunc import NpsRiskModel
from training.registry import (
    apply_decision,
    champion_version,
    configure_mlflow,
    decide_promotion,
    model_requirements,
)
from training.sampling import sample_for_driver, subset
from training.selection import (
    CANDIDATES,
    HeadChoice,
    HeadData,
    choose_head,
    inner_origins,
    refit_unweighted,
)
from training.snapshots import (
    Split,
    TrainingDataError,
    build_snapshots,
    choose_as_of_dates,
    customer_fold,
    split_snapshots,
)
from training.sources import MemorySource, TableSource, table_source
from training.text_model import fit_text_scorer
from training.text_selection import TEXT_PREFIX, choose_text_features, without_text

Progress = Callable[[str], None]
MODEL = "served"  # the registered model, whichever candidate it is
MIN_CHURN_POSITIVES = 10
MIN_NPS_RESPONSES = 50
BALANCE_FEATURES = 12


@dataclass
class FittedModels:
    """Everything fitted in one run, before it is logged."""

    bundle: NpsRiskModel
    baselines: list
    response: ResponseModel | None
    unweighted_nps: NpsModel | None
    choices: dict[str, HeadChoice] = field(default_factory=dict)
    candidates: dict[str, NpsRiskModel] = field(default_factory=dict)  # every one, refitted


@dataclass
class TrainResult:
    run_id: str
    model_name: str
    model_version: str | None
    promoted: bool
    reasons: list[str]
    heads: list[str]
    metrics: pd.DataFrame
    notes: list[str]
    report_dir: Path
    seconds: dict[str, float] = field(default_factory=dict)
    checks: dict[str, float] = field(default_factory=dict)

    @property
    def headline(self) -> pd.DataFrame:
        return headline(self.metrics)


def _heads(snapshots: pd.DataFrame, split: Split, notes: list[str]) -> list[str]:
    heads = []
    churned = snapshots["churned"]
    if churned.notna().any():
        pos_train = churned[split.train].sum()
        if pos_train >= MIN_CHURN_POSITIVES and churned[split.valid].sum() > 0:
            heads.append("churn")
        else:
            notes.append(
                f"churn model not trained: {int(pos_train)} churns in the training window "
                f"(need {MIN_CHURN_POSITIVES}) and {int(churned[split.valid].sum())} in validation"
            )
    else:
        notes.append("no churn table: the churn model is not trained")
    responded = snapshots["responded"].to_numpy()
    if (responded & split.train).sum() >= MIN_NPS_RESPONSES and (responded & split.valid).any():
        heads.append("nps")
    else:
        notes.append(
            f"NPS model not trained: {(responded & split.train).sum()} survey answers in the "
            f"training window (need {MIN_NPS_RESPONSES})"
        )
    if not heads:
        raise TrainingDataError(
            "Nothing to train: no usable labels. Training needs a churn table with churns, or "
            "nps_responses with answers, inside the labelled window. " + " ".join(notes)
        )
    return heads


def response_rows(
    frame: pd.DataFrame, fit_rows: np.ndarray, cal_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The rows the response model fits and calibrates on: with the surveys table, only the
    invited windows (so it learns P(answers | invited), non-answers included); without it,
    every customer counts as asked."""
    asked = frame["invited"].to_numpy(dtype=bool) if "invited" in frame else True
    return fit_rows & asked, cal_rows & asked


def calibration_rows(frame: pd.DataFrame, settings: Settings) -> np.ndarray:
    """The customers whose rows stop early and calibrate (a fixed fold per customer)."""
    t = settings.training
    return customer_fold(frame["customer_id"], t.calibration_fraction, f"calibration:{t.seed}")


def _fit(
    settings: Settings,
    plan: FeaturePlan,
    frame: pd.DataFrame,
    split: Split,
    heads: list[str],
    info: dict,
    fit_unweighted: bool,
    notes: list[str],
    text: TextScorer | None = None,
    horizon: int = 90,
    row_weight: np.ndarray | None = None,
) -> FittedModels:
    """Fit each head's candidates, choose on inner windows, refit before the outer window.

    ``row_weight`` weighs rows back after a stratified down-sampling (training.sampling)."""
    t = settings.training
    lgbm = t.lightgbm
    encoder = FeatureEncoder(plan.feature_names, plan.categorical, plan.settings.max_categories)
    encoder.fit(frame[split.train])
    X = encoder.transform(frame)
    cats = encoder.categorical_indices_
    cal = calibration_rows(frame, settings)
    fit_rows, cal_rows = split.train & ~cal, split.train & cal
    rounds, stop = lgbm.n_estimators, lgbm.early_stopping_rounds
    sign_churn = monotone_vector(plan.feature_names, +1) if t.monotone_constraints else None
    sign_nps = monotone_vector(plan.feature_names, -1) if t.monotone_constraints else None
    origins = inner_origins(frame, split, horizon, t)
    choices: dict[str, HeadChoice] = {}

    churn = None
    if "churn" in heads:
        y = frame["churned"].to_numpy(dtype=float)
        head = HeadData("churn", "binary", X, y, ~np.isnan(y), cats, cal, row_weight, sign_churn)
        choices["churn"] = choose_head(head, origins, split.train, t)
        churn = choices["churn"].model

    nps = unweighted = response = None
    weights = np.ones(len(frame))
    if "nps" in heads:
        responded = frame["responded"].to_numpy()
        if t.nps_selection_correction == "ipw":
            response = ResponseModel(lightgbm_params(lgbm, "binary", t.seed), rounds, stop)
            r = responded.astype(float)
            fit_asked, cal_asked = response_rows(frame, fit_rows, cal_rows)
            response.fit(X[fit_asked], r[fit_asked], X[cal_asked], r[cal_asked], cats)
            if "invited" in frame and not frame["invited"].all():
                notes.append(
                    f"response model learned from {int(fit_asked.sum() + cal_asked.sum()):,} "
                    f"invited customer windows ({int((r[fit_asked] == 0).sum()):,} unanswered "
                    "in fitting), from the surveys table"
                )
            weights = np.ones(len(frame))
            weights[responded] = response.weights(X[responded], t.max_ipw_weight)
        if row_weight is not None:
            weights = weights * row_weight
        score = np.nan_to_num(frame["nps_score"].to_numpy(dtype=float))
        head = HeadData("nps", "regression", X, score, responded, cats, cal, weights, sign_nps)
        choices["nps"] = choose_head(head, origins, split.train, t)
        nps = choices["nps"].model
        if fit_unweighted and response is not None:
            unweighted = refit_unweighted(head, choices["nps"], split.train, t.seed)
    for name, choice in choices.items():
        notes += choice.notes
        scorer = describe_scorer(choice.model.scorer)
        windows = len(choice.inner["origin"].unique())
        notes.append(
            f"{name}: serving the {choice.chosen} candidate ({scorer}), "
            f"chosen on {windows} inner window(s)"
        )

    numeric = [c for c in plan.feature_names if c not in plan.categorical]
    train = frame[split.train]
    churned = train["churned"].to_numpy() if churn is not None else None
    answered = train["responded"].to_numpy()
    nps_frame = train[answered] if nps is not None else None
    score = train["nps_score"].to_numpy()[answered] if nps is not None else None
    w = weights[split.train][answered] if nps is not None else None
    baselines = [
        BaseRateBaseline().fit(train, churned, nps_frame, score, w),
        LastNpsBaseline().fit(train, churned, nps_frame, score, w),
        LinearBaseline(numeric, plan.categorical, t.seed).fit(train, churned, nps_frame, score, w),
    ]
    info = {
        **info,
        "candidates": {name: choice.chosen for name, choice in choices.items()},
    }
    # The text scorer travels with the model even when text selection dropped its features:
    # the reviews and the page code themes with it (the plan decides what is scored).
    catalog = learn_catalog(plan, frame[split.train]).to_dict()
    bundle = NpsRiskModel(
        encoder, churn, nps, plan.to_dict(), info, text, catalog=catalog, response=response
    )
    candidates = {}
    for kind in CANDIDATES:
        c = choices.get("churn")
        n = choices.get("nps")
        if (c is None or kind in c.models) and (n is None or kind in n.models):
            candidates[kind] = NpsRiskModel(
                encoder,
                c.models[kind] if c else None,
                n.models[kind] if n else None,
                plan.to_dict(),
                info,
                text,
                catalog=catalog,
                response=response,
            )
    return FittedModels(bundle, baselines, response, unweighted, choices, candidates)


def _selection_checks(
    fitted: FittedModels, frame: pd.DataFrame, split: Split, truth: pd.DataFrame | None
) -> dict[str, float]:
    """How the NPS model handles who answers surveys, measured.

    - Balance: mean |standardised difference| between respondents and all customers on the
      most important features, before and after the inverse propensity weights.
    - On demo data: error and bias of predicted NPS against every validation customer's
      true expected score (answering or not), with and without the weights.
    """
    checks: dict[str, float] = {}
    bundle = fitted.bundle
    if bundle.nps is None:
        return checks
    encoder = bundle.encoder
    train = split.train
    X = encoder.transform(frame[train])
    responded = frame["responded"].to_numpy()[train]
    gains = bundle.nps.scorer.importance()
    top = np.argsort(-gains)[:BALANCE_FEATURES]
    if fitted.response is not None and responded.any():
        w = fitted.response.weights(X[responded], np.inf)
        smd_before, smd_after = [], []
        for j in top:
            col = X[:, j]
            ok = ~np.isnan(col)
            sd = np.nanstd(col[ok])
            if sd == 0 or ok.sum() < 10:
                continue
            resp = col[responded]
            okr = ~np.isnan(resp)
            smd_before.append(abs(np.nanmean(resp) - np.nanmean(col)) / sd)
            smd_after.append(abs(np.average(resp[okr], weights=w[okr]) - np.nanmean(col)) / sd)
        if smd_before:
            checks["nps.selection.smd_before"] = float(np.mean(smd_before))
            checks["nps.selection.smd_after"] = float(np.mean(smd_after))
    if truth is not None:
        valid = frame[split.valid]
        merged = valid[["customer_id", "as_of"]].merge(
            truth, on=["customer_id", "as_of"], how="left"
        )
        expected = merged["expected_nps"].to_numpy()
        ok = ~np.isnan(expected)
        Xv = encoder.transform(valid)
        variants = {"weighted": bundle.nps}
        if fitted.unweighted_nps is not None:
            variants["unweighted"] = fitted.unweighted_nps
        for name, model in variants.items():
            pred = model.predict_score(Xv)
            checks[f"nps.population.mae_{name}"] = float(np.mean(np.abs(pred[ok] - expected[ok])))
            checks[f"nps.population.bias_{name}"] = float(np.mean(pred[ok] - expected[ok]))
        resp = valid["responded"].to_numpy()
        checks["nps.population.respondent_minus_all_expected"] = float(
            np.nanmean(expected[resp]) - np.nanmean(expected)
        )
    return checks


def _lineage(
    tables: ValidatedTables,
    as_of: list[pd.Timestamp],
    snapshots: pd.DataFrame,
    split: Split,
    horizon: int,
) -> dict:
    report = tables.report
    return {
        "source": report.source,
        "tables": {
            name: {
                "origin": t.origin,
                "sha256": tables.content_hashes.get(name),
                "rows_read": t.rows_read,
                "rows_kept": t.rows_kept,
                "rows_set_aside": t.rows_set_aside,
            }
            for name, t in report.tables.items()
        },
        "absent_tables": report.absent_tables,
        "horizon_days": horizon,
        "as_of_dates": [str(d.date()) for d in as_of],
        "snapshot_rows": len(snapshots),
        "split": split.describe(),
        "train_as_of": [str(d.date()) for d in split.train_as_of],
        "valid_as_of": [str(d.date()) for d in split.valid_as_of],
    }


def _report_markdown(
    result_metrics: pd.DataFrame, checks: dict, notes: list[str], split: Split
) -> str:
    overall = result_metrics[
        (result_metrics["segment"] == "all") & (result_metrics["metric"] != "n")
    ]
    lines = ["# Training evaluation", "", f"Split: {split.describe()}", ""]
    for target in ("churn", "nps"):
        sub = overall[overall["target"] == target]
        if sub.empty:
            continue
        table = sub.pivot_table(index="model", columns="metric", values="value")
        lines += [f"## {target} (validation window)", "", table.round(4).to_markdown(), ""]
        segs = result_metrics[
            (result_metrics["target"] == target)
            & (result_metrics["segment"] != "all")
            & (result_metrics["model"].isin([MODEL, "oracle"]))
        ]
        if not segs.empty:
            shown = ["roc_auc", "calibration_error"] if target == "churn" else ["mae"]
            seg_table = segs[segs["metric"].isin([*shown, "n"])].pivot_table(
                index=["segment", "segment_value"], columns=["metric", "model"], values="value"
            )
            # Flat headers ("roc_auc lightgbm"), not tuples, and one column per index level.
            seg_table.columns = [" ".join(map(str, c)) for c in seg_table.columns]
            seg_table = seg_table.round(4).reset_index()
            lines += [f"### {target} by segment", "", seg_table.to_markdown(index=False), ""]
    if checks:
        lines += ["## Survey-response selection checks", ""]
        lines += [f"- {k}: {v:.4f}" for k, v in checks.items()] + [""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


@dataclass
class LabelledData:
    """Validated tables, the feature plan, and labelled snapshots split for validation."""

    tables: ValidatedTables  # on Spark the driver's share: per-customer tables and summaries
    plan: FeaturePlan
    as_of: list[pd.Timestamp]
    snapshots: pd.DataFrame
    split: Split
    notes: list[str]
    text: TextScorer | None = None


def prepare_data(
    source: TableSource | Path | str,
    settings: Settings,
    horizon: int,
    report_dir: Path,
    plan: FeaturePlan | None = None,
    text: TextScorer | None = None,
    as_of: pd.Timestamp | None = None,
) -> LabelledData:
    """Load, validate (writing the report), label snapshots, split them, score the customers'
    texts and plan features.

    ``source``: where the rows are (training.sources); a path is read into memory. With
    ``plan`` and ``text`` given (a trained model's), features follow them instead of the
    data; otherwise the text model is fitted on comments it may learn from (see
    training.text_model) when text features are on.
    """
    if isinstance(source, (str, Path)):
        source = MemorySource(source, settings)
    fit_text = plan is None and settings.text.features
    tables, source_notes = source.validated(report_dir, comments=fit_text)
    notes = [
        f"{t.table}: {t.rows_set_aside} rows set aside (see {report_dir})"
        for t in tables.report.tables.values()
        if t.rows_set_aside
    ]
    notes += source_notes
    as_of, as_of_notes = choose_as_of_dates(tables, settings.training, horizon, as_of)
    snapshots = build_snapshots(tables, as_of, horizon)
    split = split_snapshots(snapshots, settings.training, horizon)
    notes += as_of_notes + split.notes
    if fit_text:
        text = fit_text_scorer(tables, settings.text, split)
        notes.append(f"text model: {text.describe()}")
    if text is not None:
        capped = source.score_texts(tables, text)
        if capped:
            notes.append(
                f"{capped:,} messages were longer than {text.max_chars:,} characters: only "
                "their beginning was scored (text.max_message_chars)"
            )
    if plan is None:
        labels = text.labels if text is not None else None
        intents = text.taxonomy.intent_ids if text is not None else None
        plan, plan_notes = plan_features(tables, settings.features, settings.data, labels, intents)
        notes += plan_notes
    return LabelledData(tables, plan, as_of, snapshots, split, notes, text)


def _sample_for_driver(
    data: LabelledData, settings: Settings
) -> tuple[LabelledData, np.ndarray | None, dict]:
    """At most ``spark.driver_row_limit`` snapshot rows (training.sampling): the data kept,
    the rows' weights (None when nothing was dropped) and the sampling record."""
    sample = sample_for_driver(
        data.snapshots,
        data.split,
        calibration_rows(data.snapshots, settings),
        settings.spark.driver_row_limit,
        settings.training.seed,
    )
    record = sample.record
    if not sample.sampled:
        return data, None, record
    snapshots, split = subset(data.snapshots, data.split, sample.keep)
    data.notes.append(
        f"{record['snapshot_rows']:,} snapshot rows exceed spark.driver_row_limit "
        f"({record['driver_row_limit']:,}): {record['rows_kept']:,} kept, "
        f"non-churners at rate {record['negative_rate']:.4f} and weighted back"
    )
    return replace(data, snapshots=snapshots, split=split), sample.weight, record


def load_truth(truth_path: Path | None) -> pd.DataFrame | None:
    if truth_path is None:
        return None
    truth = pd.read_parquet(truth_path)
    truth["as_of"] = pd.to_datetime(truth["as_of"]).dt.normalize()
    return truth


@dataclass
class Evaluated:
    """A run fitted and scored on its held-out window, before anything is plotted or logged."""

    data: LabelledData
    horizon: int
    heads: list[str]
    frame: pd.DataFrame
    fitted: FittedModels
    valid: pd.DataFrame
    predictions: dict[str, pd.DataFrame]
    metrics: pd.DataFrame
    checks: dict[str, float]
    info: dict
    truth: pd.DataFrame | None
    seconds: dict[str, float] = field(default_factory=dict)
    engine: str = "duckdb"
    sampling: dict = field(default_factory=dict)  # training.sampling's record


def fit_and_evaluate(
    data_path: Path | str,
    settings: Settings,
    report_dir: Path,
    horizon_days: int | None = None,
    truth_path: Path | None = None,
    progress: Progress | None = None,
    as_of: pd.Timestamp | None = None,
    engine: str | None = None,
) -> Evaluated:
    """Everything `train` does up to the metrics of every candidate, baseline and the oracle
    on the outer window (shared with benchmarks/model_quality.py).

    With ``engine="spark"`` the export is read and validated once, on the cluster: the driver
    gets the per-customer tables and summaries the labels and the plan need
    (training.sources.SparkSource), the snapshot features are built there, and at most
    ``spark.driver_row_limit`` rows come back (training.sampling).
    """
    engine = engine or settings.features.backend
    say = progress or (lambda _m: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    horizon = horizon_days or settings.training.horizon_days
    say("loading and validating tables")
    # Spark reads and validates the export once: the same tables serve the labels, the plan
    # and the features, and are released once the features are built.
    with table_source(data_path, settings, engine) as source:
        data = prepare_data(source, settings, horizon, report_dir / "validation", as_of=as_of)
        heads = _heads(data.snapshots, data.split, data.notes)
        lap("prepare")

        row_weight = None
        sampling: dict = {}
        if engine == "spark":
            data, row_weight, sampling = _sample_for_driver(data, settings)
        where = " on Spark" if engine == "spark" else ""
        say(f"building features for {len(data.snapshots):,} snapshot rows{where}")
        pairs = data.snapshots[["customer_id", "as_of"]]
        features = source.snapshot_features(data.tables, pairs, data.plan, data.text)
    plan, split, notes, snapshots = data.plan, data.split, data.notes, data.snapshots
    frame = snapshots.merge(
        features, on=["customer_id", "as_of"], how="left", validate="one_to_one"
    )
    lap("features")

    truth = load_truth(truth_path)

    text_choice = None
    if plan.text_themes and settings.text.selection:
        say("measuring the text features on the inner windows")
        text_choice = choose_text_features(
            settings, plan, frame, split, heads, horizon, calibration_rows(frame, settings)
        )
        notes.append(text_choice.note)
        if not text_choice.keep:
            plan = without_text(plan)
            # The text model stays in the bundle: the reviews and the page code themes with it,
            # though the features no longer use it.
            data = replace(data, plan=plan)
            frame = frame.drop(columns=[c for c in frame.columns if c.startswith(TEXT_PREFIX)])
        lap("text selection")

    say(f"fitting {', '.join(heads)} candidates and baselines")
    info = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "horizon_days": horizon,
        "heads": heads,
        "validation_window": [str(d.date()) for d in split.valid_as_of],
        "features_as_of_latest": str(max(data.as_of).date()),
    }
    if text_choice is not None:
        info["text_selection"] = {
            "keep": text_choice.keep,
            "deltas": text_choice.deltas,
            "inner": text_choice.inner.to_dict(orient="records"),
        }
    fitted = _fit(
        settings,
        plan,
        frame,
        split,
        heads,
        info,
        truth is not None,
        notes,
        data.text,
        horizon,
        row_weight,
    )
    lap("fit")

    say("evaluating on the held-out window")
    valid = frame[split.valid].reset_index(drop=True)
    predictions = {MODEL: fitted.bundle.predict_frame(valid)}
    for kind, model in fitted.candidates.items():
        predictions[f"candidate_{kind}"] = model.predict_frame(valid)
    for baseline in fitted.baselines:
        predictions[baseline.name] = baseline.predict(valid)
    if truth is not None:
        oracle = oracle_predictions(valid, truth)
        if oracle is not None:
            predictions["oracle"] = oracle
    metrics = evaluate_predictions(valid, predictions)
    checks = _selection_checks(fitted, frame, split, truth)
    # The model card (GET /model) shows the validation metrics the version was chosen on.
    fitted.bundle.info["validation_metrics"] = validation_metrics(metrics, MODEL)
    lap("evaluate")
    return Evaluated(
        data,
        horizon,
        heads,
        frame,
        fitted,
        valid,
        predictions,
        metrics,
        checks,
        fitted.bundle.info,
        truth,
        timings,
        engine,
        sampling,
    )


def train(
    data_path: Path | str,
    settings: Settings,
    horizon_days: int | None = None,
    truth_path: Path | None = None,
    progress: Progress | None = None,
    as_of: pd.Timestamp | None = None,
    engine: str | None = None,
) -> TrainResult:
    """Train, evaluate, log and register; move the champion alias only if the gate says so.

    ``as_of`` fixes a single as-of date instead of monthly snapshots; ``engine`` (default
    ``features.backend``) where the snapshot features are built.
    """
    say = progress or (lambda _m: None)
    stamp = utc_stamp()
    report_dir = new_report_dir(settings, "train", stamp)
    done = fit_and_evaluate(
        data_path, settings, report_dir, horizon_days, truth_path, say, as_of, engine
    )
    engine, sampling = done.engine, done.sampling
    data, horizon, heads, fitted = done.data, done.horizon, done.heads, done.fitted
    valid, predictions, metrics, checks, info = (
        done.valid,
        done.predictions,
        done.metrics,
        done.checks,
        done.info,
    )
    tables, plan, as_of, snapshots, split, notes = (
        data.tables,
        data.plan,
        data.as_of,
        data.snapshots,
        data.split,
        data.notes,
    )
    timings = dict(done.seconds)
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    say("plotting")
    plot_dir = report_dir / "plots"
    plot_dir.mkdir(exist_ok=True)
    if "churn" in heads:
        y = valid["churned"].to_numpy()
        curves = {
            k: v["churn_probability"].to_numpy() for k, v in predictions.items() if k != "base_rate"
        }
        plots.plot_roc(y, curves, "Churn ROC (validation window)", plot_dir / "churn_roc.png")
        plots.plot_calibration(
            y,
            {k: v for k, v in curves.items() if k in (MODEL, "logistic", "oracle")},
            plot_dir / "churn_calibration.png",
        )
    answered = valid["responded"].to_numpy()
    if "nps" in heads and answered.any():
        det = (valid["nps_score"].to_numpy()[answered] <= 6).astype(float)
        curves = {
            k: v["p_detractor"].to_numpy()[answered]
            for k, v in predictions.items()
            if k != "base_rate"
        }
        plots.plot_roc(
            det, curves, "Detractor ROC (validation respondents)", plot_dir / "detractor_roc.png"
        )
    sample = valid.sample(min(2000, len(valid)), random_state=settings.training.seed)
    Xs = fitted.bundle.encoder.transform(sample)
    for head in heads:
        plots.plot_shap_summary(
            fitted.bundle.contributions(Xs, head),
            Xs,
            fitted.bundle.features,
            f"SHAP summary: {head}",
            plot_dir / f"shap_{head}.png",
        )
    lap("plots")

    say("logging to MLflow and applying the promotion gate")
    eval_dir = report_dir / "evaluation"
    eval_dir.mkdir(exist_ok=True)
    metrics.to_csv(eval_dir / "metrics.csv", index=False)
    headline(metrics).to_csv(eval_dir / "headline.csv")
    (eval_dir / "report.md").write_text(_report_markdown(metrics, checks, notes, split))
    (report_dir / "features.json").write_text(
        json.dumps(
            {
                "features": plan.feature_names,
                "categorical": plan.categorical,
                "plan": plan.to_dict(),
                "catalog": fitted.bundle.catalog_data,
            },
            indent=2,
        )
    )
    lineage = _lineage(tables, as_of, snapshots, split, horizon)
    (report_dir / "lineage.json").write_text(json.dumps(lineage, indent=2))

    client = configure_mlflow(settings)
    registry = settings.registry
    # The folder's name, suffix included: two runs started in the same second stay apart.
    with mlflow.start_run(run_name=f"train-{report_dir.name}") as run:
        mlflow.log_params(
            {
                "horizon_days": horizon,
                "heads": ",".join(heads),
                "split_strategy": split.strategy,
                "n_as_of_dates": len(as_of),
                "first_as_of": str(min(as_of).date()),
                "last_as_of": str(max(as_of).date()),
                "n_features": len(plan.feature_names),
                "nps_selection_correction": settings.training.nps_selection_correction,
                "text_features": bool(plan.text_themes),
                "text_model": data.text.model.kind if data.text is not None else "none",
                "text_model_comments": data.text.model.n_comments if data.text is not None else 0,
                "monotone_constraints": settings.training.monotone_constraints,
                "engine": engine,
                **{f"sampling_{k}": v for k, v in sampling.items()},
                **{f"lgbm_{k}": v for k, v in settings.training.lightgbm.model_dump().items()},
            }
        )
        mlflow.set_tags(
            {"data_source": str(data_path), "stage": "train", "report_dir": str(report_dir)}
        )
        overall = metrics[(metrics["segment"] == "all") & (metrics["metric"] != "n")]
        mlflow.log_metrics(
            {
                (
                    f"{r.target}.{r.metric}"
                    if r.model == MODEL
                    else f"{r.target}.{r.metric}.{r.model}"
                ): float(r.value)
                for r in overall.itertuples()
                if not np.isnan(r.value)
            }
        )
        mlflow.log_metrics(
            {
                **checks,
                **{
                    f"rows.{k}": float(v)
                    for k, v in {
                        "snapshots": len(snapshots),
                        "train": split.train.sum(),
                        "valid": split.valid.sum(),
                    }.items()
                },
            }
        )
        mlflow.log_dict(lineage, "lineage.json")
        # Every candidate's inner-window figures and the choice; their outer-window figures
        # are the metrics logged above under candidate_<kind>.
        for head, choice in fitted.choices.items():
            mlflow.log_param(f"{head}_candidate", choice.chosen)
            mlflow.log_param(f"{head}_candidate_configs", json.dumps(choice.configs))
            mlflow.log_text(choice.inner.to_csv(index=False), f"selection/{head}_inner.csv")
        # Whether the text features stayed on, and the inner-window figures that decided it.
        text_selection = info.get("text_selection")
        if text_selection is not None:
            mlflow.log_param("text_selection", "kept" if text_selection["keep"] else "dropped")
            mlflow.log_metrics(
                {f"text_selection.{h}_delta": d for h, d in text_selection["deltas"].items()}
            )
            mlflow.log_text(
                pd.DataFrame(text_selection["inner"]).to_csv(index=False),
                "selection/text_features_inner.csv",
            )
            calibrator = getattr(choice.model, "calibrator_", None)
            if calibrator is not None:
                mlflow.log_param(f"{head}_calibration", calibrator.method_)
                mlflow.log_metrics(
                    {
                        f"{head}.calibration_cv_log_loss.{k}": v
                        for k, v in calibrator.scores_.items()
                    }
                )
        # The validation summary is counts only; the quarantined rows (which may hold personal
        # data) stay in the local report folder and never reach MLflow.
        mlflow.log_dict(tables.report.to_dict(), "validation_report.json")
        mlflow.log_artifacts(str(eval_dir), "evaluation")
        mlflow.log_artifacts(str(plot_dir), "plots")
        mlflow.log_artifact(str(report_dir / "features.json"))
        log_reference(valid, predictions[MODEL], fitted.bundle, settings)  # monitoring baseline

        example = valid[fitted.bundle.features].head(5).copy()
        for column in plan.categorical:
            example[column] = example[column].fillna("unknown")
        info_model = mlflow.pyfunc.log_model(
            name="model",
            python_model=fitted.bundle,
            signature=fitted.bundle.signature(),
            input_example=example,
            pip_requirements=model_requirements(),
            registered_model_name=registry.model_name,
        )
        version = str(info_model.registered_model_version)
        for key, value in {**info, "run_id": run.info.run_id, "split": split.describe()}.items():
            client.set_model_version_tag(
                registry.model_name,
                version,
                key,
                json.dumps(value) if isinstance(value, list) else str(value),
            )

        candidate = primary_metrics(metrics, MODEL)
        current = champion_version(client, registry.model_name, registry.champion_alias)
        champion_metrics = None
        if current is not None and str(current.version) != version:
            champion_metrics = _champion_metrics(current, registry.model_name, valid)
        decision = decide_promotion(candidate, champion_metrics, registry.promotion_tolerance)
        if current is not None and champion_metrics is None:
            decision.reasons.insert(0, f"champion v{current.version} could not be evaluated")
        apply_decision(client, registry.model_name, version, registry.champion_alias, decision)
        mlflow.set_tags(
            {
                "promotion": "champion" if decision.promote else "challenger",
                "promotion_reason": "; ".join(decision.reasons)[:5000],
                "model_version": version,
            }
        )
    lap("log")
    return TrainResult(
        run_id=run.info.run_id,
        model_name=registry.model_name,
        model_version=version,
        promoted=decision.promote,
        reasons=decision.reasons,
        heads=heads,
        metrics=metrics,
        notes=notes,
        report_dir=report_dir,
        seconds=timings,
        checks=checks,
    )


def _champion_metrics(current, name: str, valid: pd.DataFrame) -> dict[str, float] | None:
    """The current champion's primary metrics on this run's validation window."""
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{current.version}").unwrap_python_model()
        predictions = model.predict_frame(valid)
    except Exception:  # a champion that cannot even score is no bar to clear
        return None
    return primary_metrics(evaluate_predictions(valid, {MODEL: predictions}), MODEL)

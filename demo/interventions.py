"""The demo world after the export: the next survey wave, and interventions with a known effect.

``next_wave_schedule`` lists the customers the simulated company surveys in the weeks after
the export (their survey cadence), for `npsrisk presurvey`. ``Continuation`` then continues
each block's latent world from the export date for the plan the product made: customers the
plan treated get a health lift by playbook (some effective, one not), starting on the due
date. The later weeks are drawn from their own random stream, so every row dated before the
export is byte-identical to the original company, and both potential outcomes of every
customer (treated and not) share the same draws: the truth of the effect is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from demo.generator import (
    CHURN_SLOPE,  # noqa: F401  (the effect sizes below are in the same health units)
    FIRST_SURVEY_AGE_WEEKS,
    RHO,
    SCORE_INTERCEPT,
    SCORE_NOISE,
    SCORE_SLOPE,
    SIGMA,
    SURVEY_EVERY_WEEKS,
    TRUTH_DIR,
    DemoConfig,
    DemoData,
    churn_hazard,
    response_probability,
)

# Health lift (latent units; one unit ~ 2 NPS score points) of a treated customer, by
# playbook, from the due date on. value_review is the program's ineffective playbook.
PLAYBOOK_EFFECTS: dict[str, float] = {
    "support_escalation": 0.9,
    "billing_review": 0.8,
    "competitive_save": 0.6,
    "adoption_session": 0.7,
    "value_review": 0.0,
    "check_in": 0.3,
}
INTERVENTION_TRUTH = "intervention_truth.parquet"
SCHEDULE_WEEKS = 4


def _active_at_end(world) -> np.ndarray:
    return world.churn_week >= world.weeks


def next_wave_schedule(
    block: DemoData, cfg: DemoConfig, weeks: int = SCHEDULE_WEEKS
) -> pd.DataFrame:
    """customer_id, survey_date of every active customer due a survey in the next ``weeks``."""
    world = block.world
    end = cfg.end
    ids = block.tables["customers"]["customer_id"].astype(str).to_numpy()
    first_week = world.weeks  # the first whole week after the last simulated one
    rows = []
    for k in range(weeks):
        w = first_week + k
        due = (
            _active_at_end(world)
            & (w - world.signup_week >= FIRST_SURVEY_AGE_WEEKS)
            & ((w - world.phase) % SURVEY_EVERY_WEEKS == 0)
        )
        day = (end + pd.Timedelta(days=7 * k + 2)).date()
        rows.append(pd.DataFrame({"customer_id": ids[due], "survey_date": day}))
    return pd.concat(rows, ignore_index=True)


@dataclass
class Continuation:
    """Continues each block from the plan; collects the truth of every planned customer."""

    cfg: DemoConfig
    plan: pd.DataFrame  # npsrisk presurvey's plan.csv: customer_id, arm, playbook, due_date, ...
    effects: dict[str, float] = field(default_factory=lambda: dict(PLAYBOOK_EFFECTS))
    truth: list[pd.DataFrame] = field(default_factory=list)
    blocks: int = 0

    def on_block(self, block: DemoData) -> DemoData:
        world = block.world
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, 7919, self.blocks])
        self.blocks += 1
        ids = block.tables["customers"]["customer_id"].astype(str).to_numpy()
        row_of = {c: i for i, c in enumerate(ids)}
        plan = self.plan[self.plan["customer_id"].isin(row_of)].drop_duplicates("customer_id")
        horizon = int(np.ceil(cfg.horizon_days / 7))
        n, end = world.n, cfg.end
        # Both potential outcomes share every draw below.
        shocks = rng.normal(0, SIGMA, (n, horizon))
        churn_u = rng.random((n, horizon))
        respond_u = rng.random(n)
        score_noise = rng.normal(0, SCORE_NOISE, n)
        answer_offset = rng.uniform(0, 5 * 86400, n)
        churn_offset = rng.uniform(0, 7, n)

        last = world.weeks - 1
        slope = np.clip(world.structural[:, last] - world.structural[:, last - 1], -0.05, 0.05)
        structural = world.structural[:, last][:, None] + slope[:, None] * np.arange(1, horizon + 1)
        transient = np.empty((n, horizon))
        x = world.transient[:, last]
        for k in range(horizon):
            x = RHO * x + shocks[:, k]
            transient[:, k] = x
        untreated = structural + transient

        lift = np.zeros((n, horizon))
        treated = np.zeros(n, dtype=bool)
        week_of = lambda day: int((pd.Timestamp(day) - end).days // 7)  # noqa: E731
        for r in plan.itertuples(index=False):
            if r.arm != "treatment":
                continue
            i = row_of[r.customer_id]
            treated[i] = True
            start = max(0, week_of(r.due_date)) if isinstance(r.due_date, str) else 0
            lift[i, start:] = self.effects.get(r.playbook, 0.0)
        health = {"untreated": untreated, "treated": untreated + lift}

        alive_at_end = _active_at_end(world)
        annual = world.annual[:, None]
        shopping = world.shopping[:, last][:, None]
        outcome = {}
        survey_week = np.full(n, -1)
        for r in plan.itertuples(index=False):
            survey_week[row_of[r.customer_id]] = max(0, week_of(r.survey_date))
        for name, h in health.items():
            hazard = churn_hazard(h, shopping, annual)
            leaves = (churn_u < hazard) & alive_at_end[:, None]
            churn_week = np.where(leaves.any(axis=1), leaves.argmax(axis=1), horizon)
            idx = np.arange(n)
            sw = np.clip(survey_week, 0, horizon - 1)
            h_survey = h[idx, sw]
            surveyed = (survey_week >= 0) & (churn_week > survey_week) & alive_at_end
            answers = surveyed & (respond_u < response_probability(h_survey))
            scores = np.clip(
                np.round(SCORE_INTERCEPT + SCORE_SLOPE * h_survey + score_noise), 0, 10
            )
            outcome[name] = (churn_week, answers, scores)

        # The world that happens: treated customers live their treated outcome.
        actual_churn = np.where(treated, outcome["treated"][0], outcome["untreated"][0])
        actual_answer = np.where(treated, outcome["treated"][1], outcome["untreated"][1])
        actual_score = np.where(treated, outcome["treated"][2], outcome["untreated"][2])

        tables = dict(block.tables)
        nps = tables["nps_responses"]
        who = np.flatnonzero(actual_answer)
        survey_days = np.array([end + pd.Timedelta(days=7 * int(survey_week[i])) for i in who])
        responded = [
            (pd.Timestamp(d) + pd.Timedelta(seconds=float(answer_offset[i]))).floor("s")
            for d, i in zip(survey_days, who, strict=True)
        ]
        new_nps = pd.DataFrame(
            {
                "response_id": [f"R-next-{self.blocks:03d}-{k:07d}" for k in range(len(who))],
                "customer_id": pd.Categorical(
                    ids[who], categories=nps["customer_id"].cat.categories
                )
                if isinstance(nps["customer_id"].dtype, pd.CategoricalDtype)
                else ids[who],
                "responded_at": pd.to_datetime(responded).astype(nps["responded_at"].dtype)
                if len(who)
                else pd.Series([], dtype=nps["responded_at"].dtype),
                "score": actual_score[who].astype(float),
                "comment": None,
                "survey_type": "relationship",
            }
        )
        tables["nps_responses"] = pd.concat([nps, new_nps], ignore_index=True)
        churn = tables["churn"]
        gone = np.flatnonzero(actual_churn < horizon)
        churned_at = [
            (end + pd.Timedelta(days=7 * int(actual_churn[i]) + float(churn_offset[i]))).floor("D")
            for i in gone
        ]
        new_churn = pd.DataFrame(
            {
                "customer_id": ids[gone],
                "churned_at": pd.to_datetime(churned_at).astype(churn["churned_at"].dtype)
                if len(gone)
                else pd.Series([], dtype=churn["churned_at"].dtype),
            }
        )
        tables["churn"] = pd.concat([churn, new_churn], ignore_index=True)

        planned = plan.set_index("customer_id")
        rows = np.array([row_of[c] for c in planned.index], dtype=int)
        t, u = outcome["treated"], outcome["untreated"]
        self.truth.append(
            pd.DataFrame(
                {
                    "customer_id": planned.index.to_numpy(),
                    "arm": planned["arm"].to_numpy(),
                    "playbook": planned["playbook"].to_numpy(),
                    "nps_category": planned.get(
                        "nps_category", pd.Series(index=planned.index)
                    ).to_numpy(),
                    "effect": lift[rows].max(axis=1),
                    "treated": treated[rows],
                    "answered_treated": t[1][rows],
                    "score_treated": np.where(t[1][rows], t[2][rows], np.nan),
                    "churned_treated": t[0][rows] < horizon,
                    "answered_untreated": u[1][rows],
                    "score_untreated": np.where(u[1][rows], u[2][rows], np.nan),
                    "churned_untreated": u[0][rows] < horizon,
                    # what the survey will see with no program at all (for the forecast check)
                    "score_if_no_program": np.where(u[1][rows], u[2][rows], np.nan),
                }
            )
        )
        manifest = dict(block.manifest)
        manifest["continued_from_plan"] = {
            "planned_customers": len(plan),
            "treated": int(treated.sum()),
            "new_answers": len(who),
            "new_churn": len(gone),
            "effects": self.effects,
        }
        return DemoData(tables, block.customer_truth, block.text_truth, manifest, world)

    def write_truth(self, out: Path) -> Path:
        path = Path(out) / TRUTH_DIR / INTERVENTION_TRUTH
        pd.concat(self.truth, ignore_index=True).to_parquet(path, index=False)
        return path


def true_effects(truth: pd.DataFrame) -> pd.DataFrame:
    """The exact effect of treatment on the treated: conversion of predicted detractors
    (answering 7-10), NPS and churn, treated potential outcome minus untreated, by playbook."""
    rows = []
    treated = truth[truth["treated"]]
    for name, part in [
        ("all", treated),
        *((f"playbook={p}", g) for p, g in treated.groupby("playbook")),
    ]:
        det = part[part["nps_category"] == "detractor"]

        def conv(frame, side):
            answered = frame[f"answered_{side}"]
            return (
                float((frame.loc[answered, f"score_{side}"] >= 7).mean())
                if answered.any()
                else np.nan
            )

        def nps(frame, side):
            s = frame.loc[frame[f"answered_{side}"], f"score_{side}"]
            return float(100 * ((s >= 9).mean() - (s <= 6).mean())) if len(s) else np.nan

        rows.append(
            {
                "group": name,
                "n_treated": len(part),
                "conversion_effect": conv(det, "treated") - conv(det, "untreated"),
                "nps_effect": nps(part, "treated") - nps(part, "untreated"),
                "churn_effect": float(
                    part["churned_treated"].mean() - part["churned_untreated"].mean()
                ),
            }
        )
    return pd.DataFrame(rows)


NEXT_WAVE_SCHEDULE = "next_wave_schedule.csv"


def demo_hooks(cfg: DemoConfig, out: Path, continue_from: Path | None = None):
    """(on_block, finish) for make_demo: always collect the next wave's schedule; with a plan,
    continue the world from it. ``finish()`` writes them and returns what it wrote."""
    schedules: list[pd.DataFrame] = []
    continuation = None
    if continue_from is not None:
        plan_path = Path(continue_from)
        if not plan_path.is_file():
            raise ValueError(f"--continue-from {plan_path}: no such plan file")
        plan = (
            pd.read_parquet(plan_path)
            if plan_path.suffix == ".parquet"
            else pd.read_csv(plan_path, dtype={"customer_id": str})
        )
        missing = {"customer_id", "arm", "playbook", "due_date", "survey_date"} - set(plan.columns)
        if missing:
            raise ValueError(
                f"{plan_path} is not a presurvey plan (missing {', '.join(sorted(missing))})"
            )
        continuation = Continuation(cfg, plan)

    def on_block(block: DemoData) -> DemoData:
        schedules.append(next_wave_schedule(block, cfg))
        return continuation.on_block(block) if continuation is not None else block

    def finish() -> dict[str, Path]:
        written = {}
        path = Path(out) / TRUTH_DIR / NEXT_WAVE_SCHEDULE
        pd.concat(schedules, ignore_index=True).to_csv(path, index=False)
        written["next wave's survey schedule"] = path
        if continuation is not None:
            written["intervention truth"] = continuation.write_truth(out)
        return written

    return on_block, finish

"""The NPS a survey wave will report, before it goes out, and the NPS of the whole base.

Respondents are not a random sample of the invited: the training run's response model gives
each invited customer's probability of answering, and a wave's NPS is simulated from who
answers and how (category probabilities). The interval is the spread of those simulated
waves: what the survey could report, sampling noise included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.contract import NPS_CATEGORIES  # ("detractor", "passive", "promoter")

_CELLS = 4_000_000  # customers x simulations per block: bounds the simulation's memory


@dataclass
class NpsEstimate:
    nps: float | None
    low: float | None
    high: float | None
    customers: int
    expected_respondents: float | None = None

    def to_dict(self) -> dict[str, Any]:
        r = lambda v: None if v is None else round(float(v), 2)  # noqa: E731
        out = {"nps": r(self.nps), "low": r(self.low), "high": r(self.high)}
        out["customers"] = int(self.customers)
        if self.expected_respondents is not None:
            out["expected_respondents"] = r(self.expected_respondents)
        return out


def simulate_nps(
    probabilities: np.ndarray,
    response: np.ndarray | None,
    samples: int,
    interval: float,
    rng: np.random.Generator,
) -> NpsEstimate:
    """Expected NPS of the respondents and a simulated interval of the reported NPS."""
    n = len(probabilities)
    if n == 0:
        return NpsEstimate(None, None, None, 0, 0.0 if response is not None else None)
    r = np.ones(n) if response is None else np.clip(response, 1e-6, 1.0)
    net = probabilities[:, 2] - probabilities[:, 0]
    expected = 100.0 * float(np.sum(r * net) / np.sum(r))
    cum = np.cumsum(probabilities, axis=1)
    draws: list[np.ndarray] = []
    per_block = max(1, _CELLS // n)
    left = samples
    while left > 0:
        s = min(per_block, left)
        left -= s
        u = rng.random((s, n))
        category = (u[..., None] > cum[None, :, :2]).sum(axis=2)  # 0 det, 1 pass, 2 pro
        answers = rng.random((s, n)) < r[None, :] if response is not None else None
        score = np.where(category == 2, 1.0, np.where(category == 0, -1.0, 0.0))
        if answers is not None:
            k = answers.sum(axis=1)
            value = np.where(
                k > 0, 100.0 * (score * answers).sum(axis=1) / np.maximum(k, 1), np.nan
            )
        else:
            value = 100.0 * score.mean(axis=1)
        draws.append(value)
    values = np.concatenate(draws)
    values = values[~np.isnan(values)]
    tail = (1 - interval) / 2
    low, high = np.quantile(values, [tail, 1 - tail]) if len(values) else (np.nan, np.nan)
    return NpsEstimate(
        expected, float(low), float(high), n, float(r.sum()) if response is not None else None
    )


def measured_nps(scores: np.ndarray) -> float | None:
    """NPS of a set of 0-10 answers (None without answers)."""
    scores = np.asarray(scores, dtype=float)
    if len(scores) == 0:
        return None
    return float(100.0 * (np.mean(scores >= 9) - np.mean(scores <= 6)))


@dataclass
class Forecast:
    wave: NpsEstimate
    base: NpsEstimate
    last_measured: float | None
    last_measured_respondents: int
    segments: list[dict[str, Any]] = field(default_factory=list)
    pulling_down: list[dict[str, Any]] = field(default_factory=list)
    themes_pulling_down: list[dict[str, Any]] = field(default_factory=list)
    response_model: str = "none"
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "wave": self.wave.to_dict(),
            "base": self.base.to_dict(),
            "last_measured": {
                "nps": None if self.last_measured is None else round(self.last_measured, 2),
                "respondents": self.last_measured_respondents,
            },
            "response_model": self.response_model,
            "segments": self.segments,
            "pulling_down": self.pulling_down,
            "themes_pulling_down": self.themes_pulling_down,
            "dropped_segments": self.alerts,
        }


def forecast_nps(
    wave: pd.DataFrame,
    base: pd.DataFrame,
    recent_answers: pd.DataFrame,
    segment_columns: Sequence[str],
    *,
    samples: int,
    interval: float,
    seed: int,
    drop_points: float,
    theme_labels: Mapping[str, str] | None = None,
    response_model: str = "none",
) -> Forecast:
    """Forecast a wave and the base, overall and per segment.

    ``wave`` and ``base`` hold ``customer_id``, ``p_detractor``, ``p_passive``, ``p_promoter``,
    optional ``p_response`` and ``themes`` (tuples), and the segment columns;
    ``recent_answers`` holds the last measured answers (``customer_id``, ``score``) with the
    segment columns.
    """
    rng = np.random.default_rng(seed)
    cols = [f"p_{c}" for c in NPS_CATEGORIES]
    has_response = "p_response" in wave.columns

    def estimate(frame: pd.DataFrame, use_response: bool) -> NpsEstimate:
        probs = frame[cols].to_numpy(float)
        resp = frame["p_response"].to_numpy(float) if use_response and has_response else None
        return simulate_nps(probs, resp, samples, interval, rng)

    overall_wave = estimate(wave, True)
    overall_base = estimate(base, False)
    last = measured_nps(recent_answers["score"].to_numpy()) if len(recent_answers) else None
    segments, pulling, alerts = [], [], []
    for column in segment_columns:
        if column not in wave.columns:
            continue
        for value, part in wave.groupby(column, dropna=False, sort=True):
            est = estimate(part, True)
            base_part = base[base[column] == value] if column in base.columns else base.iloc[:0]
            answers = (
                recent_answers[recent_answers[column] == value]
                if column in recent_answers.columns
                else recent_answers.iloc[:0]
            )
            seg_last = measured_nps(answers["score"].to_numpy()) if len(answers) else None
            row = {
                "column": column,
                "value": None if pd.isna(value) else str(value),
                "wave": est.to_dict(),
                "base": estimate(base_part, False).to_dict(),
                "last_measured": {
                    "nps": None if seg_last is None else round(seg_last, 2),
                    "respondents": len(answers),
                },
            }
            segments.append(row)
            if est.nps is not None and overall_wave.nps is not None:
                weight = (est.expected_respondents or est.customers) / (
                    overall_wave.expected_respondents or overall_wave.customers
                )
                pull = weight * (est.nps - overall_wave.nps)
                if pull < 0:
                    pulling.append(
                        {
                            "column": column,
                            "value": row["value"],
                            "nps": row["wave"]["nps"],
                            "points": round(pull, 2),
                        }
                    )
            if est.nps is not None and seg_last is not None and seg_last - est.nps >= drop_points:
                alerts.append(
                    {
                        "column": column,
                        "value": row["value"],
                        "forecast_nps": row["wave"]["nps"],
                        "last_measured_nps": round(seg_last, 2),
                        "drop": round(seg_last - est.nps, 2),
                    }
                )
    pulling.sort(key=lambda r: r["points"])
    themes = _themes_pulling_down(wave, overall_wave, theme_labels or {})
    return Forecast(
        overall_wave,
        overall_base,
        last,
        len(recent_answers),
        segments,
        pulling[:10],
        themes,
        response_model,
        alerts,
    )


def _themes_pulling_down(wave: pd.DataFrame, overall: NpsEstimate, labels) -> list[dict]:
    """Themes whose customers' expected NPS is below the wave's, weighted by how many."""
    if "themes" not in wave.columns or overall.nps is None or not len(wave):
        return []
    net = 100.0 * (wave["p_promoter"] - wave["p_detractor"]).to_numpy(float)
    r = wave["p_response"].to_numpy(float) if "p_response" in wave.columns else np.ones(len(wave))
    total = r.sum()
    out = []
    exploded: dict[str, list[int]] = {}
    for i, themes in enumerate(wave["themes"]):
        for t in themes or ():
            exploded.setdefault(t, []).append(i)
    for theme, rows in exploded.items():
        idx = np.array(rows)
        nps = float(np.sum(r[idx] * net[idx]) / np.sum(r[idx]))
        pull = float(np.sum(r[idx]) / total * (nps - overall.nps))
        if pull < 0:
            out.append(
                {
                    "theme": theme,
                    "label": labels.get(theme, theme),
                    "customers": len(rows),
                    "nps": round(nps, 2),
                    "points": round(pull, 2),
                }
            )
    return sorted(out, key=lambda x: x["points"])[:10]

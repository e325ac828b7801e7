"""A synthetic SaaS company whose latent customer health drives every contract table."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from scipy.special import expit
from scipy.stats import norm

from demo import phrases
from demo.corruption import inject_bad_rows

Progress = Callable[[str], None]

TABLES_WRITTEN = ("customers", "usage", "tickets", "chats", "nps_responses", "churn")
TRUTH_DIR = "ground_truth"  # beside the tables, never a contract table itself
CUSTOMER_TRUTH = "customer_truth.parquet"
TEXT_TRUTH = "text_truth.parquet"

TIERS = np.array(["starter", "pro", "enterprise"], dtype=object)
REGIONS = np.array(["na", "emea", "apac", "latam"], dtype=object)
INDUSTRIES = np.array(
    ["software", "retail", "finance", "healthcare", "education", "manufacturing", "media"],
    dtype=object,
)
CHANNELS = np.array(["inbound", "outbound", "partner", "self_serve"], dtype=object)
PAIN_THEMES = np.array(phrases.THEMES[:5], dtype=object)  # competitors come from shopping episodes

# Structural parameters of the simulated world (one place, so the oracle uses the same).
RHO, SIGMA = 0.9, 0.22  # weekly AR(1) of the transient part of health
SCORE_INTERCEPT, SCORE_SLOPE, SCORE_NOISE = 7.3, 2.0, 1.3
CHURN_INTERCEPT, CHURN_SLOPE, SHOPPING_LIFT, ANNUAL_EFFECT = -5.3, -1.5, 1.6, -0.5
SURVEY_EVERY_WEEKS = 13
FIRST_SURVEY_AGE_WEEKS = 6
DRIFT_HEALTH_SHOCK, DRIFT_TICKET_MULTIPLIER, DRIFT_WEEKS = -0.9, 1.8, 13
# Habits are sticky: usage follows health with this half-life, while words, tickets, survey
# answers and churn follow it at once. A customer turning unhappy says so weeks before their
# usage shows it, as support teams see in real accounts.
USAGE_HALF_LIFE_WEEKS = 6.0
# Stated intent (README, "Intent in the demo worlds"): weekly chance per active customer of
# writing an intent message. Anyone, more so when unhappy: INTENT_BASE_RATE x exp(-0.9 x health)
# (about 4% of customers a year at average health). A customer who has decided to leave says
# so at INTENT_LEAD_RATE a week from INTENT_LEAD_WEEKS[1] to INTENT_LEAD_WEEKS[0] weeks before
# the churn date (about 30% of churners), before their usage (a six-week half-life) shows it.
# A competitor evaluation (a shopping episode) is voiced at INTENT_SHOPPING_RATE a week, an
# annual contract's renewal review in its last eight weeks at INTENT_RENEWAL_RATE. Healthy
# customers deny intent ("we are not evaluating other vendors") at INTENT_DENIAL_RATE.
INTENT_BASE_RATE = 0.0008
INTENT_LEAD_RATE = 0.035
INTENT_LEAD_WEEKS = (2, 12)
INTENT_SHOPPING_RATE = 0.02
INTENT_RENEWAL_RATE = 0.004
INTENT_DENIAL_RATE = 0.0006
# Which intent a departing or unhappy customer states (shopping and renewal have their own).
INTENT_MIX = {
    "competitor_evaluation": 0.25,
    "budget_cuts": 0.25,
    "champion_left": 0.15,
    "renewal_review": 0.2,
    "downsizing": 0.15,
}


@dataclass(frozen=True)
class Mechanics:
    """How one simulated company works. ``default`` is the original demo world; the others
    exist so models are judged on mechanics they were not developed against."""

    description: str
    metrics: tuple[str, ...] | None = None  # None: DemoConfig.metrics
    churn_intercept: float = CHURN_INTERCEPT
    churn_slope: float = CHURN_SLOPE
    annual_effect: float = ANNUAL_EFFECT
    # Annual contracts leave only around their renewal date: hazard is this share outside the
    # four renewal weeks and concentrated inside them (1.0: no renewal timing).
    annual_off_renewal: float = 1.0
    usage_half_life_weeks: float = USAGE_HALF_LIFE_WEEKS
    usage_seat_power: float = 1.0  # how generic usage counts scale with seats
    ticket_rate: float = 0.05
    chat_rate: float = 0.07
    response_intercept: float = -1.6
    intent_rate_scale: float = 1.0  # low-touch customers write less, intent included
    annual_share: tuple[float, float, float] = (0.2, 0.5, 0.8)  # starter, pro, enterprise


WORLDS: dict[str, Mechanics] = {
    "default": Mechanics("The original demo company: a B2B SaaS with four usage metrics."),
    "seats": Mechanics(
        "Seat-based collaboration tool: usage scales with seats (sessions, documents_edited, "
        "active_seats), usage reacts within two weeks, annual contracts churn only at renewal "
        "while monthly ones churn any week, more annual contracts.",
        metrics=("sessions", "documents_edited", "active_seats"),
        churn_intercept=-5.0,
        churn_slope=-1.3,
        annual_effect=0.0,
        annual_off_renewal=0.05,
        usage_half_life_weeks=2.0,
        usage_seat_power=1.0,
        annual_share=(0.35, 0.65, 0.9),
    ),
    "lowtouch": Mechanics(
        "Low-touch self-serve product: few tickets and chats, rarer survey answers, sticky "
        "usage habits (ten-week lag), metrics app_opens and exports that barely scale with seats,"
        " mostly monthly contracts.",
        metrics=("app_opens", "exports"),
        churn_intercept=-4.9,
        churn_slope=-1.2,
        usage_half_life_weeks=10.0,
        usage_seat_power=0.3,
        ticket_rate=0.008,
        chat_rate=0.015,
        response_intercept=-2.4,
        intent_rate_scale=0.5,
        annual_share=(0.05, 0.15, 0.4),
    ),
}


@dataclass(frozen=True)
class DemoConfig:
    """What to generate. Same config and seed: byte-identical tables."""

    customers: int = 5000
    seed: int = 7
    start: date = date(2024, 1, 1)
    months: int = 24
    bad_rows: float = 0.0
    drift_event: bool = False
    drift_segment: tuple[str, str] = ("region", "emea")
    file_format: Literal["parquet", "csv", "duckdb"] = "parquet"
    oracle_paths: int = 32
    horizon_days: int = 90
    metrics: tuple[str, ...] = ("logins", "active_users", "reports_created", "api_calls")
    world: str = "default"
    # Intent messages on or after this date use the held-out phrasings only (demo/phrases.py),
    # so a benchmark measures text features on words no training window carried. None: never.
    intent_heldout_from: date | None = None

    @property
    def mechanics(self) -> Mechanics:
        return WORLDS[self.world]

    @property
    def metric_names(self) -> tuple[str, ...]:
        return self.mechanics.metrics or self.metrics

    @property
    def blocks(self) -> int:
        return -(-self.customers // BLOCK_CUSTOMERS)

    @property
    def end(self) -> pd.Timestamp:
        """First instant after the data (the export date)."""
        return pd.Timestamp(self.start) + pd.DateOffset(months=self.months)


@dataclass
class DemoData:
    """The contract tables plus the ground truth they were drawn from."""

    tables: dict[str, pd.DataFrame]
    customer_truth: pd.DataFrame
    text_truth: pd.DataFrame
    manifest: dict = field(default_factory=dict)
    # The block's latent world, for hooks that continue it (demo/interventions.py).
    world: object = field(default=None, repr=False, compare=False)


@dataclass
class _World:
    """Per-customer latent state and the weekly health matrix."""

    n: int
    weeks: int
    week_start: np.ndarray  # datetime64[ns] per week
    signup: np.ndarray  # datetime64[ns]
    signup_week: np.ndarray
    base: np.ndarray
    annual: np.ndarray
    shopping: np.ndarray  # (n, weeks) bool
    structural: np.ndarray  # (n, weeks) health without the AR part
    transient: np.ndarray  # (n, weeks) AR(1) part
    churn_week: np.ndarray  # weeks index, or `weeks` if never
    churned_at: np.ndarray  # datetime64[ns] or NaT
    phase: np.ndarray
    pain: np.ndarray
    seats: np.ndarray
    in_drift: np.ndarray  # (n,) bool: customer belongs to the drift segment
    drift_weeks: tuple[int, int]
    mechanics: Mechanics = WORLDS["default"]
    hazard_scale: np.ndarray | None = None  # (n, weeks) renewal timing; None: 1 everywhere

    @property
    def health(self) -> np.ndarray:
        return self.structural + self.transient

    def usage_health(self) -> np.ndarray:
        """Health as usage shows it: an exponentially weighted average of past weeks."""
        health = self.health
        keep = 0.5 ** (1.0 / self.mechanics.usage_half_life_weeks)
        lagged = np.empty_like(health)
        lagged[:, 0] = health[:, 0]
        for k in range(1, self.weeks):
            lagged[:, k] = keep * lagged[:, k - 1] + (1 - keep) * health[:, k]
        return lagged

    def active(self) -> np.ndarray:
        w = np.arange(self.weeks)[None, :]
        return (w > self.signup_week[:, None]) & (w < self.churn_week[:, None])


def _seconds(values: np.ndarray) -> np.ndarray:
    """Event times to the second, as exports carry them."""
    return values.astype("datetime64[s]").astype("datetime64[ns]")


def churn_hazard(
    health: np.ndarray,
    shopping: np.ndarray,
    annual: np.ndarray,
    m: Mechanics = WORLDS["default"],
    scale: np.ndarray | None = None,
) -> np.ndarray:
    """Weekly probability of leaving (``scale``: the renewal timing of annual contracts)."""
    hazard = expit(
        m.churn_intercept
        + m.churn_slope * health
        + SHOPPING_LIFT * shopping
        + m.annual_effect * annual
    )
    return hazard if scale is None else np.minimum(hazard * scale, 0.95)


def renewal_scale(m: Mechanics, annual: np.ndarray, signup_week: np.ndarray, weeks: int):
    """Annual contracts: hazard x ``annual_off_renewal`` outside the four weeks before each
    yearly renewal, and raised inside them so a year's total is about the same."""
    if m.annual_off_renewal >= 1.0:
        return None
    w = np.arange(weeks)[None, :]
    into_year = (w - signup_week[:, None]) % 52
    renewing = into_year >= 48
    inside = (52 - 48 * m.annual_off_renewal) / 4
    annual_scale = np.where(renewing, inside, m.annual_off_renewal)
    return np.where(annual[:, None] > 0, annual_scale, 1.0)


def response_probability(health: np.ndarray, m: Mechanics = WORLDS["default"]) -> np.ndarray:
    """Survey response rate: very happy and very unhappy customers answer more often."""
    return expit(m.response_intercept + 1.3 * np.abs(health - 0.35))


def _score_table(noise: float = SCORE_NOISE) -> tuple[np.ndarray, np.ndarray]:
    """Per latent mean score: P(each integer score 0..10) after rounding and clipping."""
    grid = np.linspace(-6, 16, 2201)
    edges = np.arange(-0.5, 10.6, 1.0)
    cdf = norm.cdf((edges[None, :] - grid[:, None]) / noise)
    probs = np.diff(cdf, axis=1)
    probs[:, 0] += cdf[:, 0]
    probs[:, -1] += 1 - cdf[:, -1]
    return grid, probs


_GRID, _SCORE_PROBS = _score_table()


def score_distribution(mean_score: np.ndarray) -> np.ndarray:
    """P(score = 0..10) for latent mean scores (rows)."""
    idx = np.clip(np.searchsorted(_GRID, mean_score), 0, len(_GRID) - 1)
    return _SCORE_PROBS[idx]


def _simulate_world(cfg: DemoConfig, rng: np.random.Generator, customers: pd.DataFrame) -> _World:
    n = len(customers)
    start = pd.Timestamp(cfg.start)
    weeks = int(np.ceil((cfg.end - start).days / 7))
    week_start = (start + pd.to_timedelta(np.arange(weeks) * 7, unit="D")).to_numpy()
    signup = customers["signup_date"].to_numpy()
    signup_week = np.floor((signup - start.to_datetime64()) / np.timedelta64(7, "D")).astype(int)

    tier = customers["plan_tier"].to_numpy()
    tier_effect = np.select([tier == "starter", tier == "pro"], [-0.15, 0.1], 0.3)
    channel_effect = np.where(customers["acquisition_channel"].to_numpy() == "partner", 0.15, 0.0)
    annual = customers["annual_contract"].to_numpy().astype(float)
    base = rng.normal(0.3, 0.7, n) + tier_effect + channel_effect + 0.15 * annual

    w = np.arange(weeks)[None, :]
    age = w - signup_week[:, None]
    onboarding = -0.6 * np.exp(-np.clip(age, 0, None) / 5.0) * (age >= 0)
    declining = rng.random(n) < 0.3
    onset = rng.integers(-30, weeks, n)
    slope = rng.uniform(0.01, 0.05, n) * declining
    trend = -np.minimum(slope[:, None] * np.clip(w - onset[:, None], 0, None), 2.0)
    structural = base[:, None] + onboarding + trend

    drift_start = int(weeks * 0.62)
    drift_weeks = (drift_start, min(weeks, drift_start + DRIFT_WEEKS))
    column, value = cfg.drift_segment
    in_drift = (customers[column].to_numpy() == value) if cfg.drift_event else np.zeros(n, bool)
    if cfg.drift_event:
        window = (w >= drift_weeks[0]) & (w < drift_weeks[1])
        structural = structural + DRIFT_HEALTH_SHOCK * (in_drift[:, None] & window)

    transient = np.empty((n, weeks))
    transient[:, 0] = rng.normal(0, SIGMA / np.sqrt(1 - RHO**2), n)
    for k in range(1, weeks):
        transient[:, k] = RHO * transient[:, k - 1] + rng.normal(0, SIGMA, n)

    # Hidden competitor evaluations: only the customers' own words reveal them.
    shopper = rng.random(n) < 0.12
    shop_start = rng.integers(0, weeks, n)
    shop_len = rng.integers(8, 21, n)
    shopping = (
        shopper[:, None] & (w >= shop_start[:, None]) & (w < (shop_start + shop_len)[:, None])
    )

    m = cfg.mechanics
    scale = renewal_scale(m, annual, signup_week, weeks)
    hazard = churn_hazard(structural + transient, shopping, annual[:, None], m, scale)
    eligible = w > signup_week[:, None]
    leaves = (rng.random((n, weeks)) < hazard) & eligible
    churn_week = np.where(leaves.any(axis=1), leaves.argmax(axis=1), weeks)
    offset = pd.to_timedelta(rng.uniform(0, 7, n), unit="D").to_numpy()
    churned_at = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    has_churn = churn_week < weeks
    churned_at[has_churn] = week_start[churn_week[has_churn]] + offset[has_churn]
    churned_at = churned_at.astype("datetime64[D]").astype("datetime64[ns]")
    past_end = churned_at >= cfg.end.to_datetime64()
    churned_at[past_end] = np.datetime64("NaT")
    churn_week[past_end] = weeks

    return _World(
        n=n,
        weeks=weeks,
        week_start=week_start,
        signup=signup,
        signup_week=signup_week,
        base=base,
        annual=annual,
        shopping=shopping,
        structural=structural,
        transient=transient,
        churn_week=churn_week,
        churned_at=churned_at,
        phase=rng.integers(0, SURVEY_EVERY_WEEKS, n),
        pain=PAIN_THEMES[rng.choice(len(PAIN_THEMES), n, p=[0.25, 0.2, 0.2, 0.2, 0.15])],
        seats=customers["seats"].to_numpy().astype(float),
        in_drift=in_drift,
        drift_weeks=drift_weeks,
        mechanics=m,
        hazard_scale=scale,
    )


def _make_customers(cfg: DemoConfig, rng: np.random.Generator, n: int, first: int) -> pd.DataFrame:
    width = max(6, len(str(cfg.customers)))
    ids = np.array([f"C-{i:0{width}d}" for i in range(first + 1, first + n + 1)], dtype=object)
    tier = TIERS[rng.choice(3, n, p=[0.55, 0.33, 0.12])]
    seats_mu = np.select([tier == "starter", tier == "pro"], [np.log(5), np.log(25)], np.log(150))
    seats = np.ceil(rng.lognormal(seats_mu, 0.6)).astype(int)
    price = np.select([tier == "starter", tier == "pro"], [12.0, 30.0], 55.0)
    start = pd.Timestamp(cfg.start)
    period_days = (cfg.end - start).days
    existing = rng.random(n) < 0.45
    offset_days = np.where(
        existing, -rng.uniform(30, 1095, n), rng.uniform(0, 0.9 * period_days, n)
    )
    signup = (start + pd.to_timedelta(np.floor(offset_days), unit="D")).to_numpy()
    share = cfg.mechanics.annual_share
    annual = rng.random(n) < np.select([tier == "starter", tier == "pro"], share[:2], share[2])

    first = np.array(
        [
            "Ana",
            "Ben",
            "Chloe",
            "Dev",
            "Elif",
            "Femi",
            "Grace",
            "Hiro",
            "Ines",
            "Jonas",
            "Kai",
            "Lena",
            "Mateo",
            "Nora",
            "Omar",
            "Priya",
            "Quinn",
            "Rosa",
            "Sven",
            "Tara",
            "Uma",
            "Viktor",
            "Wen",
            "Yara",
            "Zoe",
        ],
        dtype=object,
    )
    last = np.array(
        [
            "Silva",
            "Okafor",
            "Martin",
            "Kumar",
            "Novak",
            "Tanaka",
            "Garcia",
            "Berg",
            "Rossi",
            "Dubois",
            "Kowalski",
            "Haddad",
            "Nguyen",
            "Schmidt",
            "Lopez",
            "Ivanova",
            "Moreau",
            "Jensen",
            "Costa",
            "Fischer",
        ],
        dtype=object,
    )
    words = np.array(
        [
            "Blue",
            "North",
            "Bright",
            "Iron",
            "Quiet",
            "Rapid",
            "Silver",
            "Green",
            "Cedar",
            "Lumen",
            "Nova",
            "Harbor",
            "Summit",
            "Pixel",
            "Delta",
        ],
        dtype=object,
    )
    kinds = np.array(
        [
            "Labs",
            "Systems",
            "Retail",
            "Health",
            "Partners",
            "Works",
            "Group",
            "Analytics",
            "Foods",
            "Logistics",
        ],
        dtype=object,
    )
    fn, ln = first[rng.integers(0, len(first), n)], last[rng.integers(0, len(last), n)]
    company = words[rng.integers(0, len(words), n)] + " " + kinds[rng.integers(0, len(kinds), n)]
    domain = pd.Series(company).str.lower().str.replace(" ", "", regex=False).to_numpy()
    email = (
        pd.Series(fn).str.lower().to_numpy()
        + "."
        + pd.Series(ln).str.lower().to_numpy()
        + "@"
        + domain
        + ".example.com"
    )
    phone = np.array(
        [
            f"+1-555-{d:03d}-{e:04d}"
            for d, e in zip(rng.integers(100, 999, n), rng.integers(0, 9999, n), strict=True)
        ],
        dtype=object,
    )
    return pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": signup.astype("datetime64[D]").astype("datetime64[ns]"),
            "plan_tier": tier,
            "industry": INDUSTRIES[rng.integers(0, len(INDUSTRIES), n)],
            "region": REGIONS[rng.choice(4, n, p=[0.45, 0.3, 0.17, 0.08])],
            "seats": seats,
            "mrr": np.round(seats * price * rng.uniform(0.85, 1.15, n), 2),
            "acquisition_channel": CHANNELS[rng.choice(4, n, p=[0.4, 0.25, 0.1, 0.25])],
            "annual_contract": annual,
            "company_name": company,
            "contact_name": fn + " " + ln,
            "contact_email": email,
            "contact_phone": phone,
        }
    )


def _make_usage(
    cfg: DemoConfig, world: _World, rng: np.random.Generator, ids: pd.Categorical
) -> pd.DataFrame:
    active = world.active()
    health = world.usage_health()
    week_end = world.week_start + np.timedelta64(6, "D")
    seats = world.seats[:, None]
    frames = []
    for metric in cfg.metric_names:
        propensity = rng.lognormal(0, 0.35, world.n)[:, None]
        if metric in ("active_users", "active_seats"):
            values = rng.binomial(world.seats.astype(int)[:, None], expit(-0.2 + 0.9 * health))
        elif metric == "logins":
            values = rng.poisson(seats * 2.0 * propensity * np.exp(0.55 * health))
        elif metric == "reports_created":
            values = rng.poisson(seats**0.7 * 0.8 * propensity * np.exp(0.7 * health))
        elif metric == "api_calls":
            uses_api = rng.random(world.n) < 0.4
            values = rng.poisson(seats * 25 * propensity * np.exp(0.5 * health)) * uses_api[:, None]
        else:  # any other name: a generic count driven by health
            size = seats**world.mechanics.usage_seat_power
            values = rng.poisson(size * propensity * np.exp(0.6 * health))
        rows, cols = np.nonzero(active & (values > 0))
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": pd.Categorical.from_codes(rows, categories=ids.categories),
                    "timestamp": week_end[cols],
                    "metric": metric,
                    "value": values[rows, cols].astype(float),
                }
            )
        )
    usage = pd.concat(frames, ignore_index=True)
    usage["metric"] = usage["metric"].astype("category")
    return usage


def _tones(health: np.ndarray, rng: np.random.Generator, positive_scale: float = 1.0) -> np.ndarray:
    p_neg = expit(-0.6 - 1.6 * health)
    p_pos = expit(-1.2 + 1.2 * health) * (1 - p_neg) * positive_scale
    u = rng.random(len(health))
    return np.where(
        u < p_neg, "negative", np.where(u < p_neg + p_pos, "positive", "neutral")
    ).astype(object)


def _themes_for(
    pain: np.ndarray, tones: np.ndarray, shopping: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A negative text is mostly about the customer's pain; shoppers mention competitors."""
    random_theme = PAIN_THEMES[rng.integers(0, len(PAIN_THEMES), len(pain))]
    theme = np.where((tones == "negative") & (rng.random(len(pain)) < 0.65), pain, random_theme)
    return np.where(shopping & (rng.random(len(pain)) < 0.5), "competitors", theme).astype(object)


def _make_tickets(cfg, world, rng, ids, pools, first_id=0):
    health = world.health
    active = world.active()
    rate = world.mechanics.ticket_rate * world.seats[:, None] ** 0.3 * np.exp(-0.8 * health)
    lo, hi = world.drift_weeks
    drift_window = (
        world.in_drift[:, None]
        & (np.arange(world.weeks)[None, :] >= lo)
        & (np.arange(world.weeks)[None, :] < hi)
    )
    rate = rate * np.where(drift_window, DRIFT_TICKET_MULTIPLIER, 1.0)
    counts = rng.poisson(rate) * active
    rows, cols = np.nonzero(counts)
    reps = counts[rows, cols]
    cust, week = np.repeat(rows, reps), np.repeat(cols, reps)
    m = len(cust)
    h = health[cust, week]
    created = _seconds(
        world.week_start[week] + pd.to_timedelta(rng.uniform(0, 7 * 86400, m), unit="s").to_numpy()
    )
    tones = np.where(rng.random(m) < expit(-0.3 - 1.5 * h), "negative", "neutral").astype(object)
    theme = _themes_for(world.pain[cust], tones, world.shopping[cust, week], rng)
    theme = np.where(
        drift_window[cust, week] & (rng.random(m) < 0.7), "reliability_performance", theme
    )
    theme = np.where(theme == "competitors", "pricing_billing_value", theme).astype(object)
    urgency = -h + rng.normal(0, 1, m) + 0.5 * (theme == "reliability_performance")
    priority = np.select(
        [urgency > 1.8, urgency > 0.9, urgency > -0.5], ["urgent", "high", "normal"], "low"
    ).astype(object)
    prio_shift = np.select(
        [priority == "urgent", priority == "high", priority == "normal"], [-0.8, -0.4, 0.0], 0.3
    )
    hours = np.exp(rng.normal(2.8 + 0.35 * (-h) + prio_shift, 0.8))
    reopened = rng.poisson(0.12 * np.exp(-0.7 * h))
    hours = hours + reopened * np.exp(rng.normal(2.5, 0.7, m))
    resolved = _seconds(created + pd.to_timedelta(hours * 3600, unit="s").to_numpy())
    open_at_end = resolved >= cfg.end.to_datetime64()
    resolved = resolved.astype("datetime64[ns]")
    resolved[open_at_end] = np.datetime64("NaT")
    csat_given = (rng.random(m) < 0.6) & ~open_at_end
    csat = np.clip(
        np.round(
            3.7 + 0.8 * h - 0.25 * np.log1p(hours / 24) - 0.3 * reopened + rng.normal(0, 0.7, m)
        ),
        1,
        5,
    )
    csat = np.where(csat_given, csat, np.nan)
    none = np.full(m, "", dtype=object)
    subject = phrases.render_texts(theme, tones, none, none, pools, rng)
    detail = phrases.render_texts(
        theme,
        np.where(tones == "negative", "negative", "neutral").astype(object),
        none,
        none,
        pools,
        rng,
    )
    body = subject + ". " + detail + "."
    order = np.argsort(created, kind="stable")
    tickets = pd.DataFrame(
        {
            "ticket_id": [f"T-{k:08d}" for k in range(first_id + 1, first_id + m + 1)],
            "customer_id": pd.Categorical.from_codes(cust[order], categories=ids.categories),
            "created_at": created[order],
            "resolved_at": resolved[order],
            "priority": priority[order],
            "category": pd.Series(theme[order]).map(phrases.TICKET_CATEGORY).to_numpy(),
            "csat": csat[order],
            "reopened": reopened[order].astype(float),
            "subject": subject[order],
            "body": body[order],
        }
    )
    truth = pd.DataFrame(
        {
            "source": "tickets",
            "key": tickets["ticket_id"],
            "themes": theme[order],
            "sentiment": tones[order],
        }
    )
    return tickets, truth


def _make_chats(cfg, world, rng, ids, pools, emails, first_id=0):
    health = world.health
    active = world.active()
    rate = (
        world.mechanics.chat_rate * world.seats[:, None] ** 0.2 * np.exp(-0.5 * health)
        + 0.04 * world.shopping
    )
    counts = rng.poisson(rate) * active
    rows, cols = np.nonzero(counts)
    reps = counts[rows, cols]
    cust, week = np.repeat(rows, reps), np.repeat(cols, reps)
    c = len(cust)
    h = health[cust, week]
    start = _seconds(
        world.week_start[week] + pd.to_timedelta(rng.uniform(0, 7 * 86400, c), unit="s").to_numpy()
    )
    order = np.argsort(start, kind="stable")
    cust, week, h, start = cust[order], week[order], h[order], start[order]
    tones = _tones(h, rng)
    theme = _themes_for(world.pain[cust], tones, world.shopping[cust, week], rng)
    conv_ids = np.array(
        [f"CH-{k:08d}" for k in range(first_id + 1, first_id + c + 1)], dtype=object
    )

    n_msgs = 2 + np.minimum(rng.poisson(1.5, c), 6)
    bot_first = rng.random(c) < 0.4
    total = n_msgs + bot_first
    conv = np.repeat(np.arange(c), total)
    pos = np.arange(len(conv)) - np.repeat(np.cumsum(total) - total, total)
    shifted = pos - bot_first[conv]
    author = np.where(shifted < 0, "bot", np.where(shifted % 2 == 0, "customer", "agent")).astype(
        object
    )
    gaps = rng.uniform(20, 300, len(conv))
    gaps[pos == 0] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[np.cumsum(total) - total], total)
    sent = _seconds(start[conv] + pd.to_timedelta(elapsed, unit="s").to_numpy())

    is_customer = author == "customer"
    # The last customer message is often a plain thanks, which carries no theme.
    last_customer = is_customer & (shifted >= n_msgs[conv] - 2)
    filler = last_customer & (shifted > 0) & (rng.random(len(conv)) < 0.5)
    m_theme = np.where(is_customer & ~filler, theme[conv], "").astype(object)
    m_tone = np.where(
        is_customer & ~filler, tones[conv], np.where(is_customer, "neutral", "")
    ).astype(object)
    second_theme = np.full(len(conv), "", dtype=object)
    second_tone = np.full(len(conv), "", dtype=object)
    mixed = is_customer & ~filler & (m_tone == "positive") & (rng.random(len(conv)) < 0.25)
    second_theme[mixed] = world.pain[cust[conv[mixed]]]
    second_tone[mixed] = "negative"
    text = np.empty(len(conv), dtype=object)
    speak = is_customer & ~filler
    text[speak] = phrases.render_texts(
        m_theme[speak], m_tone[speak], second_theme[speak], second_tone[speak], pools, rng
    )
    thanks = np.array(["thanks", "thank you", "ok thanks", "got it", "ok", "cheers"], dtype=object)
    text[filler] = thanks[rng.integers(0, len(thanks), int(filler.sum()))]
    agent = author == "agent"
    text[agent] = np.array(phrases.AGENT_LINES, dtype=object)[
        rng.integers(0, len(phrases.AGENT_LINES), int(agent.sum()))
    ]
    bot = author == "bot"
    text[bot] = phrases.BOT_LINES[0]
    # Some customers paste their contact details: personal data inside free text.
    pii = speak & (rng.random(len(conv)) < 0.02)
    text[pii] = text[pii] + ". you can reach me at " + emails[cust[conv[pii]]]

    chats = pd.DataFrame(
        {
            "conversation_id": conv_ids[conv],
            "customer_id": pd.Categorical.from_codes(cust[conv], categories=ids.categories),
            "sent_at": sent,
            "author": author,
            "text": text,
        }
    )
    themes_truth = np.where(mixed, m_theme + "|" + second_theme, m_theme)
    sentiment = np.where(mixed, "mixed", m_tone)
    truth = pd.DataFrame(
        {
            "source": "chats",
            "key": chats["conversation_id"]
            + "@"
            + pd.Series(sent).dt.strftime("%Y-%m-%dT%H:%M:%S"),
            "themes": themes_truth,
            "sentiment": sentiment,
        }
    )[is_customer]
    return chats, truth.reset_index(drop=True)


def intent_rates(world: _World) -> dict[str, np.ndarray]:
    """Weekly chance (customers x weeks) of each kind of intent message (see INTENT_*)."""
    w = np.arange(world.weeks)[None, :]
    scale = world.mechanics.intent_rate_scale * world.active()
    to_churn = world.churn_week[:, None] - w
    deciding = (
        (to_churn >= INTENT_LEAD_WEEKS[0])
        & (to_churn <= INTENT_LEAD_WEEKS[1])
        & (world.churn_week[:, None] < world.weeks)  # still a customer at the export date
    )
    into_year = (w - world.signup_week[:, None]) % 52
    renewing = (world.annual[:, None] > 0) & (into_year >= 44)
    health = world.health
    return {
        "stated": scale * (INTENT_BASE_RATE * np.exp(-0.9 * health) + INTENT_LEAD_RATE * deciding),
        "shopping": scale * INTENT_SHOPPING_RATE * world.shopping,
        "renewal": scale * INTENT_RENEWAL_RATE * renewing,
        "denial": scale * INTENT_DENIAL_RATE * (1 + np.clip(health, 0, None)),
    }


def _make_intent_chats(cfg, world, rng, ids, first_id=0):
    """Short chats in which the customer states an intent (or denies one), and their truth.

    Drawn from their own random stream and appended after the other chats, so every other
    table and chat of a world is what it was without them."""
    rates = intent_rates(world)
    kinds = list(rates)
    cumulative = np.cumsum(np.stack([rates[k] for k in kinds]), axis=0)
    u = rng.random(cumulative.shape[1:])
    happens = u < cumulative[-1]
    cust, week = np.nonzero(happens)
    kind = (u[cust, week][None, :] >= cumulative[:, cust, week]).sum(axis=0)
    m = len(cust)
    stated = rng.choice(list(INTENT_MIX), m, p=list(INTENT_MIX.values()))
    theme = np.select(
        [kind == 0, kind == 1, kind == 2], [stated, "competitor_evaluation", "renewal_review"], ""
    ).astype(object)
    sent = _seconds(
        world.week_start[week] + pd.to_timedelta(rng.uniform(0, 7 * 86400, m), unit="s").to_numpy()
    )
    heldout = (
        np.zeros(m, bool)
        if cfg.intent_heldout_from is None
        else sent >= pd.Timestamp(cfg.intent_heldout_from).to_datetime64()
    )
    text, themes_truth = phrases.render_intent(theme, heldout, rng)
    reply = _seconds(sent + pd.to_timedelta(rng.uniform(60, 600, m), unit="s").to_numpy())
    lines = np.array(phrases.AGENT_LINES, dtype=object)
    agent = lines[rng.integers(0, len(lines), m)]
    conv = np.array([f"CH-{k:08d}" for k in range(first_id + 1, first_id + m + 1)], dtype=object)
    chats = pd.DataFrame(
        {
            "conversation_id": np.repeat(conv, 2),
            "customer_id": pd.Categorical.from_codes(np.repeat(cust, 2), categories=ids.categories),
            "sent_at": np.column_stack([sent, reply]).ravel(),
            "author": np.tile(np.array(["customer", "agent"], dtype=object), m),
            "text": np.column_stack([text, agent]).ravel(),
        }
    )
    truth = pd.DataFrame(
        {
            "source": "chats",
            "key": conv + "@" + pd.Series(sent).dt.strftime("%Y-%m-%dT%H:%M:%S").to_numpy(),
            "themes": themes_truth,
            "sentiment": np.where(theme == "", "positive", "negative").astype(object),
            "heldout_phrasing": heldout,
        }
    )
    return chats, truth


def _nps_comment(scores, h, cust, week, world, rng, pools):
    m = len(scores)
    category = np.select([scores <= 6, scores <= 8], ["detractor", "passive"], "promoter")
    u = rng.random(m)
    tone = np.select(
        [category == "detractor", category == "promoter"],
        [np.where(u < 0.8, "negative", "mixed"), np.where(u < 0.85, "positive", "short_positive")],
        np.select([u < 0.35, u < 0.6, u < 0.8], ["mixed", "short_neutral", "positive"], "negative"),
    ).astype(object)
    base_tone = np.select(
        [tone == "mixed", tone == "short_positive", tone == "short_neutral"],
        ["positive", "", ""],
        tone,
    ).astype(object)
    theme = _themes_for(
        world.pain[cust],
        np.where(tone == "negative", "negative", "x"),
        world.shopping[cust, week],
        rng,
    )
    theme = np.where(base_tone == "", "", theme).astype(object)
    second_theme = np.where(tone == "mixed", world.pain[cust], "").astype(object)
    second_tone = np.where(tone == "mixed", "negative", "").astype(object)
    text = np.empty(m, dtype=object)
    long = base_tone != ""
    text[long] = phrases.render_texts(
        theme[long], base_tone[long], second_theme[long], second_tone[long], pools, rng
    )
    for kind, bank in (
        ("short_positive", phrases.SHORT_POSITIVE),
        ("short_neutral", phrases.SHORT_NEUTRAL),
    ):
        mask = tone == kind
        text[mask] = np.array(bank, dtype=object)[rng.integers(0, len(bank), int(mask.sum()))]
    themes_truth = np.where(tone == "mixed", theme + "|" + second_theme, theme)
    sentiment = np.select(
        [tone == "short_positive", tone == "short_neutral"], ["positive", "neutral"], tone
    )
    return text, themes_truth, sentiment


def _make_nps(cfg, world, rng, ids, pools, tickets, first_id=0):
    active = world.active()
    w = np.arange(world.weeks)[None, :]
    age = w - world.signup_week[:, None]
    due = (
        active
        & (age >= FIRST_SURVEY_AGE_WEEKS)
        & ((w - world.phase[:, None]) % SURVEY_EVERY_WEEKS == 0)
    )
    health = world.health
    responds = due & (rng.random(due.shape) < response_probability(health, world.mechanics))
    cust, week = np.nonzero(responds)
    h = health[cust, week]
    scores = np.clip(
        np.round(SCORE_INTERCEPT + SCORE_SLOPE * h + rng.normal(0, SCORE_NOISE, len(h))), 0, 10
    )
    responded = _seconds(
        world.week_start[week]
        + pd.to_timedelta(rng.uniform(0, 6 * 86400, len(h)), unit="s").to_numpy()
    )
    survey_type = np.full(len(h), "relationship", dtype=object)

    # Transactional surveys after some resolved tickets.
    t = tickets[tickets["resolved_at"].notna()]
    pick = rng.random(len(t)) < 0.03
    t = t[pick]
    t_cust = t["customer_id"].cat.codes.to_numpy()
    t_resp = _seconds(
        (
            t["resolved_at"] + pd.to_timedelta(rng.uniform(3600, 48 * 3600, len(t)), unit="s")
        ).to_numpy()
    )
    t_week = np.clip(
        ((t_resp - world.week_start[0]) / np.timedelta64(7, "D")).astype(int), 0, world.weeks - 1
    )
    keep = (t_resp < cfg.end.to_datetime64()) & (t_week < world.churn_week[t_cust])
    t_cust, t_resp, t_week = t_cust[keep], t_resp[keep], t_week[keep]
    csat = t["csat"].to_numpy()[keep]
    t_h = health[t_cust, t_week]
    t_scores = np.clip(
        np.round(
            SCORE_INTERCEPT
            + SCORE_SLOPE * t_h
            + 0.5 * np.nan_to_num(csat - 3.5)
            + rng.normal(0, SCORE_NOISE, len(t_h))
        ),
        0,
        10,
    )

    cust = np.concatenate([cust, t_cust])
    week = np.concatenate([week, t_week])
    h = np.concatenate([h, t_h])
    scores = np.concatenate([scores, t_scores])
    responded = np.concatenate([responded, t_resp]).astype("datetime64[ns]")
    survey_type = np.concatenate([survey_type, np.full(len(t_h), "transactional", dtype=object)])
    order = np.argsort(responded, kind="stable")
    cust, week, h, scores, responded, survey_type = (
        a[order] for a in (cust, week, h, scores, responded, survey_type)
    )

    text, themes_truth, sentiment = _nps_comment(scores, h, cust, week, world, rng, pools)
    has_comment = rng.random(len(scores)) < 0.65
    response_ids = np.array(
        [f"R-{k:07d}" for k in range(first_id + 1, first_id + len(scores) + 1)], dtype=object
    )
    nps = pd.DataFrame(
        {
            "response_id": response_ids,
            "customer_id": pd.Categorical.from_codes(cust, categories=ids.categories),
            "responded_at": responded,
            "score": scores.astype(float),
            "comment": np.where(has_comment, text, None),
            "survey_type": survey_type,
        }
    )
    truth = pd.DataFrame(
        {
            "source": "nps_responses",
            "key": response_ids,
            "themes": themes_truth,
            "sentiment": sentiment,
        }
    )[has_comment]
    return nps, truth.reset_index(drop=True)


def month_ends(start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    """Month-end dates strictly inside [start, end)."""
    return [d for d in pd.date_range(start, end, freq="ME") if start <= d < end]


def _oracle(
    cfg: DemoConfig, world: _World, customers: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """True churn probability and NPS distribution at each month end (Monte Carlo futures)."""
    horizon_weeks = int(np.ceil(cfg.horizon_days / 7))
    start64 = pd.Timestamp(cfg.start).to_datetime64()
    out = []
    for as_of in month_ends(pd.Timestamp(cfg.start), cfg.end):
        cutoff = (as_of + pd.Timedelta(days=1)).to_datetime64()
        w_t = int((as_of.to_datetime64() - start64) / np.timedelta64(7, "D"))
        alive = (world.signup <= as_of.to_datetime64()) & ~(world.churned_at < cutoff)
        idx = np.flatnonzero(alive)
        if len(idx) == 0:
            continue
        k = cfg.oracle_paths
        x = np.repeat(world.transient[idx, w_t][:, None], k, axis=1)
        survive = np.ones((len(idx), k))
        next_survey = w_t + 1 + (world.phase[idx] - (w_t + 1)) % SURVEY_EVERY_WEEKS
        next_survey = np.maximum(next_survey, world.signup_week[idx] + FIRST_SURVEY_AGE_WEEKS)
        next_survey = np.where(
            next_survey > w_t + horizon_weeks, w_t + horizon_weeks // 2, next_survey
        )
        h_survey = np.zeros((len(idx), k))
        for j in range(1, horizon_weeks + 1):
            w = w_t + j
            x = RHO * x + rng.normal(0, SIGMA, x.shape)
            wc = min(w, world.weeks - 1)
            h = world.structural[idx, wc][:, None] + x
            scale = None if world.hazard_scale is None else world.hazard_scale[idx, wc][:, None]
            hz = churn_hazard(
                h,
                world.shopping[idx, wc][:, None],
                world.annual[idx][:, None],
                world.mechanics,
                scale,
            )
            survive *= 1 - hz
            at_survey = (next_survey == w)[:, None]
            h_survey = np.where(at_survey, h, h_survey)
        dist = score_distribution((SCORE_INTERCEPT + SCORE_SLOPE * h_survey).ravel()).reshape(
            len(idx), k, 11
        )
        probs = dist.mean(axis=1)
        out.append(
            pd.DataFrame(
                {
                    "customer_id": customers["customer_id"].to_numpy()[idx],
                    "as_of": as_of,
                    "health": world.structural[idx, w_t] + world.transient[idx, w_t],
                    "true_churn_probability": 1 - survive.mean(axis=1),
                    "expected_nps": probs @ np.arange(11),
                    "p_detractor": probs[:, :7].sum(axis=1),
                    "p_passive": probs[:, 7:9].sum(axis=1),
                    "p_promoter": probs[:, 9:].sum(axis=1),
                    "p_respond": response_probability(h_survey, world.mechanics).mean(axis=1),
                }
            )
        )
    return pd.concat(out, ignore_index=True)


BLOCK_CUSTOMERS = 100_000  # customers simulated at once: bounds memory for any company size


@dataclass
class _Numbering:
    """Running counters, so ids stay unique and dense across blocks."""

    customer: int = 0
    ticket: int = 0
    conversation: int = 0
    response: int = 0


def _rng(seed: int, block: int) -> np.random.Generator:
    # Block 0 keeps the plain seed, so a company of one block is what it always was.
    return np.random.default_rng(seed if block == 0 else [seed, block])


def _drift_manifest(cfg: DemoConfig, world: _World) -> dict | None:
    if not cfg.drift_event:
        return None
    lo, hi = world.drift_weeks
    return {
        "segment": {cfg.drift_segment[0]: cfg.drift_segment[1]},
        "start": str(pd.Timestamp(world.week_start[lo]).date()),
        "end": str(pd.Timestamp(world.week_start[hi - 1] + np.timedelta64(7, "D")).date()),
        "health_shock": DRIFT_HEALTH_SHOCK,
        "ticket_multiplier": DRIFT_TICKET_MULTIPLIER,
        "theme": "reliability_performance",
    }


def _generate_block(
    cfg: DemoConfig, block: int, n: int, numbering: _Numbering, pools, say: Progress
) -> DemoData:
    rng = _rng(cfg.seed, block)
    say("customers")
    customers = _make_customers(cfg, rng, n, numbering.customer)
    # Categories in row order, so a category code is the customer's row index.
    ids = pd.Categorical(customers["customer_id"], categories=customers["customer_id"])
    say("latent health and churn")
    world = _simulate_world(cfg, rng, customers)
    say("usage")
    usage = _make_usage(cfg, world, rng, ids)
    say("tickets")
    tickets, ticket_truth = _make_tickets(cfg, world, rng, ids, pools, numbering.ticket)
    say("chats")
    chats, chat_truth = _make_chats(
        cfg,
        world,
        rng,
        ids,
        pools,
        customers["contact_email"].to_numpy(),
        numbering.conversation,
    )
    intent_chats, intent_truth = _make_intent_chats(
        cfg,
        world,
        np.random.default_rng([cfg.seed, 3, block]),
        ids,
        numbering.conversation + chats["conversation_id"].nunique(),
    )
    chats = pd.concat([chats, intent_chats], ignore_index=True)
    chat_truth = pd.concat([chat_truth, intent_truth], ignore_index=True)
    say("nps responses")
    nps, nps_truth = _make_nps(cfg, world, rng, ids, pools, tickets, numbering.response)
    numbering.customer += n
    numbering.ticket += len(tickets)
    numbering.conversation += chats["conversation_id"].nunique()
    numbering.response += len(nps)
    churned = ~np.isnat(world.churned_at)
    churn = pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_numpy()[churned],
            "churned_at": world.churned_at[churned],
        }
    )
    say("ground truth (Monte Carlo oracle)")
    truth = _oracle(cfg, world, customers, _rng(cfg.seed + 2, block))
    # The last simulated week runs past the export date: nothing dated after it exists yet.
    end = cfg.end.to_datetime64()
    usage = usage[usage["timestamp"].to_numpy() < end].reset_index(drop=True)
    tickets = tickets[tickets["created_at"].to_numpy() < end].reset_index(drop=True)
    chats = chats[chats["sent_at"].to_numpy() < end].reset_index(drop=True)
    nps = nps[nps["responded_at"].to_numpy() < end].reset_index(drop=True)
    tables = {
        "customers": customers,
        "usage": usage,
        "tickets": tickets,
        "chats": chats,
        "nps_responses": nps,
        "churn": churn,
    }
    manifest = {
        "config": {
            k: (str(v) if isinstance(v, date) else v)
            for k, v in asdict(cfg).items()
            # The default world's manifest is unchanged.
            if (k != "world" or v != "default") and (k != "intent_heldout_from" or v is not None)
        },
        "data_end": str(cfg.end.date()),
        "drift_event": _drift_manifest(cfg, world),
        "intent_messages": {
            theme or "denial": int(n)
            for theme, n in intent_truth["themes"]
            .str.split("|")
            .map(lambda ts: next((t for t in ts if t in phrases.INTENT_THEMES), ""))
            .value_counts()
            .items()
        },
        "rows": {name: len(frame) for name, frame in tables.items()},
        "personal_data_columns": ["company_name", "contact_name", "contact_email", "contact_phone"],
    }
    text_truth = pd.concat([ticket_truth, chat_truth, nps_truth], ignore_index=True)
    return DemoData(tables, truth, text_truth, manifest, world)


def iter_demo_blocks(cfg: DemoConfig, progress: Progress | None = None) -> Iterator[DemoData]:
    """The company in blocks of up to BLOCK_CUSTOMERS customers, each simulated on its own."""
    say = progress or (lambda _msg: None)
    pools = phrases.build_pools(np.random.default_rng(cfg.seed + 1))
    numbering = _Numbering()
    for block, first in enumerate(range(0, cfg.customers, BLOCK_CUSTOMERS)):
        n = min(BLOCK_CUSTOMERS, cfg.customers - first)
        yield _generate_block(cfg, block, n, numbering, pools, say)


def generate_demo(cfg: DemoConfig, progress: Progress | None = None) -> DemoData:
    """Simulate the company and return its tables and ground truth (nothing is written)."""
    blocks = list(iter_demo_blocks(cfg, progress))
    if len(blocks) == 1:
        return blocks[0]
    first = blocks[0]
    tables = {
        name: pd.concat([_plain_ids(b.tables[name]) for b in blocks], ignore_index=True)
        for name in first.tables
    }
    manifest = {**first.manifest, "rows": {name: len(t) for name, t in tables.items()}}
    return DemoData(
        tables,
        pd.concat([b.customer_truth for b in blocks], ignore_index=True),
        pd.concat([b.text_truth for b in blocks], ignore_index=True),
        manifest,
    )


def _plain_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """Block-local categoricals as plain strings, so blocks concatenate."""
    if isinstance(frame["customer_id"].dtype, pd.CategoricalDtype):
        frame = frame.assign(customer_id=frame["customer_id"].astype(object))
    return frame


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    frame = frame.copy(deep=False)
    fields = []
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(object)
        # Text columns are always strings, even when a block holds no value in them, so every
        # block of a table has the same schema.
        kind = pa.string() if frame[col].dtype == object else None
        fields.append((col, kind))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema = pa.schema(
        [pa.field(name, kind or table.schema.field(name).type) for name, kind in fields]
    )
    return table.cast(schema)


class _DemoWriter:
    """Writes blocks of the company as they come: one file (or DuckDB table) per table."""

    def __init__(self, out: Path, cfg: DemoConfig, say: Progress):
        self.out, self.cfg, self.say = out, cfg, say
        out.mkdir(parents=True, exist_ok=True)
        (out / TRUTH_DIR).mkdir(exist_ok=True)
        self.writers: dict[str, pq.ParquetWriter | pacsv.CSVWriter | None] = {}
        self.schemas: dict[str, pa.Schema] = {}
        self.rows: dict[str, int] = {}
        self.injected: dict[str, dict[str, int]] = {}
        self.manifest: dict = {}
        self.blocks = 0
        self.con = None
        if cfg.file_format == "duckdb":
            path = out / "npsrisk.duckdb"
            path.unlink(missing_ok=True)
            self.con = duckdb.connect(str(path))

    def _append(self, name: str, table: pa.Table, path: Path | None) -> None:
        """Append a block to table ``name``: a file at ``path``, or a DuckDB table (None)."""
        first = name not in self.schemas
        if first:
            self.schemas[name] = table.schema
        else:
            table = table.cast(self.schemas[name])
        if path is None:
            self.con.register("block_view", table)
            if first:
                self.con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM block_view')
            else:
                self.con.execute(f'INSERT INTO "{name}" SELECT * FROM block_view')
            self.con.unregister("block_view")
            return
        if first:
            self.writers[name] = (
                pq.ParquetWriter(path, table.schema)
                if path.suffix == ".parquet"
                else pacsv.CSVWriter(path, table.schema)
            )
        self.writers[name].write_table(table)

    def add(self, data: DemoData) -> None:
        tables = data.tables
        if self.cfg.bad_rows > 0:
            self.say("injecting contract-breaking rows")
            tables, injected = inject_bad_rows(
                tables, self.cfg.bad_rows, _rng(self.cfg.seed + 3, self.blocks)
            )
            for name, counts in injected.items():
                mine = self.injected.setdefault(name, {})
                for reason, n in counts.items():
                    mine[reason] = mine.get(reason, 0) + n
        fmt = self.cfg.file_format
        for name, frame in tables.items():
            self.say(f"writing {name}")
            path = None if fmt == "duckdb" else self.out / f"{name}.{fmt}"
            self._append(name, _to_arrow(frame), path)
            self.rows[name] = self.rows.get(name, 0) + len(frame)
        truth = self.out / TRUTH_DIR
        self._append("customer_truth", _to_arrow(data.customer_truth), truth / CUSTOMER_TRUTH)
        self._append("text_truth", _to_arrow(data.text_truth), truth / TEXT_TRUTH)
        self.manifest = self.manifest or dict(data.manifest)
        self.blocks += 1

    def close(self) -> dict:
        for writer in self.writers.values():
            writer.close()
        if self.con is not None:
            self.con.close()
        manifest = {**self.manifest, "rows": dict(self.rows), "blocks": self.blocks}
        if self.cfg.bad_rows > 0:
            manifest["injected_bad_rows"] = self.injected
        (self.out / TRUTH_DIR / "manifest.json").write_text(
            json.dumps(manifest, indent=2, default=str)
        )
        return manifest


def _written(out: Path, cfg: DemoConfig) -> dict[str, Path]:
    if cfg.file_format == "duckdb":
        written = {name: out / "npsrisk.duckdb" for name in TABLES_WRITTEN}
    else:
        written = {name: out / f"{name}.{cfg.file_format}" for name in TABLES_WRITTEN}
    return {**written, "ground_truth": out / TRUTH_DIR}


def write_demo(
    data: DemoData, out: Path, cfg: DemoConfig, progress: Progress | None = None
) -> dict[str, Path]:
    """Write generated tables in the chosen format and the ground truth beside them."""
    writer = _DemoWriter(out, cfg, progress or (lambda _msg: None))
    writer.add(data)
    data.manifest = writer.close()
    return _written(out, cfg)


def make_demo(
    cfg: DemoConfig,
    out: Path,
    progress: Progress | None = None,
    on_block: Callable[[DemoData], DemoData] | None = None,
) -> dict:
    """Generate and write the company block by block (any size fits in memory); the manifest.

    ``on_block`` sees each block (with its world) before it is written and may extend it."""
    say = progress or (lambda _msg: None)
    writer = _DemoWriter(out, cfg, say)
    for block in iter_demo_blocks(cfg, say):
        writer.add(on_block(block) if on_block is not None else block)
    return writer.close()


def find_text_truth(data_path: Path) -> Path | None:
    """The demo generator's per-text themes and sentiment beside a data folder, if any."""
    data_path = Path(data_path)
    folder = data_path if data_path.is_dir() else data_path.parent
    candidate = folder / TRUTH_DIR / TEXT_TRUTH
    return candidate if candidate.is_file() else None


def find_ground_truth(data_path: Path) -> Path | None:
    """The demo generator's customer truth beside a data folder or DuckDB file, if any."""
    data_path = Path(data_path)
    folder = data_path if data_path.is_dir() else data_path.parent
    candidate = folder / TRUTH_DIR / CUSTOMER_TRUTH
    return candidate if candidate.is_file() else None

"""The one typed settings object shared by the CLI, training and the service."""

from __future__ import annotations

import contextvars
import os
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

CONFIG_ENV_VAR = "NPSRISK_CONFIG"
DEFAULT_CONFIG_NAME = "npsrisk.yaml"
DEFAULT_HOME = Path("npsrisk-home")

# The YAML file chosen by ``load_settings``; a context variable rather than a global so
# that tests (and threads) can load different configurations side by side.
_yaml_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar("yaml_path", default=None)


class ConfigError(Exception):
    """A configuration problem the user can fix; the message says what to set."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(_Section):
    """How contract tables are read and which columns may become features."""

    excluded_columns: list[str] = Field(
        default_factory=list,
        description="Columns of `customers` that never become features (besides personal data).",
    )
    personal_data_columns: list[str] = Field(
        default_factory=list,
        description="Extra column names to treat as personal data, on top of the detected ones.",
    )
    earliest_date: date = Field(
        date(1970, 1, 1),
        description="Rows dated before this are set aside as date_out_of_range.",
    )
    future_margin_days: int = Field(
        7,
        ge=0,
        description="Rows dated more than this many days after the day of the run are set "
        "aside as date_out_of_range (an export holds no future events).",
    )


class FeatureSettings(_Section):
    """Point-in-time feature definitions."""

    windows_days: list[int] = Field(
        default=[7, 30, 90], description="Look-back windows for usage levels and event counts."
    )
    trend_recent_days: int = Field(30, description="Recent period of a usage trend.")
    trend_prior_days: int = Field(60, description="Prior period a usage trend compares against.")
    usage_lookback_days: int = Field(
        180,
        description="Look-back for days since last usage or chat (null beyond it); widened to "
        "the longest window if that is longer.",
    )
    drop_threshold: float = Field(
        0.5, description="A usage drop flag is set when recent usage fell by at least this share."
    )
    max_categories: int = Field(
        50, description="Categorical levels kept per column; rarer levels become 'other'."
    )
    backend: Literal["duckdb", "spark"] = Field(
        "duckdb",
        description="Engine that reads the export, validates it, builds features and scores: "
        "duckdb (one machine) or spark (a cluster, see the spark section); --engine overrides.",
    )

    @field_validator("backend", mode="before")
    @classmethod
    def _old_backend_name(cls, value: object) -> object:
        # Models trained before the engine setting carry "pyspark" in their feature plan.
        return "spark" if value == "pyspark" else value

    @field_validator("windows_days")
    @classmethod
    def _positive_windows(cls, value: list[int]) -> list[int]:
        if not value or any(w <= 0 for w in value):
            raise ValueError("windows_days needs at least one positive number of days")
        return sorted(set(value))


class SparkSettings(_Section):
    """The Spark session used when the engine is spark (`--engine spark`)."""

    master: str = Field(
        "local[*]",
        description="Spark master URL: local[N], spark://host:7077, yarn, k8s://...; under "
        "spark-submit the submitted master wins.",
    )
    app_name: str = Field("npsrisk", description="Spark application name.")
    conf: dict[str, str] = Field(
        default_factory=dict,
        description="Extra Spark settings passed to the session builder "
        "(e.g. spark.executor.memory, spark.hadoop.fs.s3a.endpoint).",
    )
    driver_row_limit: int = Field(
        2_000_000,
        gt=0,
        description="Most training snapshot rows brought to the driver; above it, rows are "
        "down-sampled by label (negatives weighted back).",
    )
    driver_comment_limit: int = Field(
        100_000,
        gt=0,
        description="Most NPS comments brought to the driver for training's text model; above "
        "it, a sample of this many chosen by a hash of each answer (the run says so).",
    )


class TextSettings(_Section):
    """Text analytics: the satisfaction model, the theme taxonomy, and text features."""

    features: bool = Field(
        True, description="Build text features (sentiment and themes of customer messages)."
    )
    min_comments: int = Field(
        200,
        ge=1,
        description="Labelled NPS comments needed to learn from; fewer: the lexicon model.",
    )
    taxonomy_path: Path | None = Field(
        None, description="Your theme YAML, merged over the shipped taxonomy."
    )
    negative_threshold: float = Field(
        0.5, gt=0, lt=1, description="A message is negative when P(detractor) reaches this."
    )
    max_message_chars: int = Field(
        5000,
        ge=100,
        description="Only the first this many characters of a message are scored (a pasted "
        "log is not a message); runs say how many messages were capped. Fixed at training.",
    )
    selection: bool = Field(
        True,
        description="Keep text features only where they do not hurt: each head is fitted on "
        "the inner windows with and without them (logged in MLflow).",
    )
    selection_tolerance: float = Field(
        0.002,
        ge=0,
        description="Text features are dropped when they lower a head's mean inner-window "
        "figure (churn ROC-AUC, NPS MAE) by more than this.",
    )


class LightGBMSettings(_Section):
    """Hyper-parameters shared by the LightGBM heads."""

    # Chosen on a 20k-customer demo company (seed 11) that is never used for reporting.
    # learning_rate 0.08 vs 0.03 there: churn AUC 0.7816 vs 0.7819, NPS MAE 1.1615 vs 1.1590,
    # with 3-4x fewer trees, so SHAP drivers (linear in trees) cost 3x less to serve.
    n_estimators: int = 1000
    learning_rate: float = 0.08
    num_leaves: int = 15
    min_child_samples: int = 100
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 5.0
    early_stopping_rounds: int = 50
    num_threads: int = Field(
        0, ge=0, description="0: one thread under 100k training rows, every core above."
    )


class TrainingSettings(_Section):
    """Labels, snapshots, splits and models."""

    horizon_days: int = Field(90, gt=0, description="Labels come from (T, T + horizon].")
    min_history_days: int = Field(
        90, ge=0, description="The first as-of date is at least this long after the data starts."
    )
    max_snapshots: int = Field(24, gt=0, description="Most recent monthly as-of dates used.")
    validation_snapshots: int = Field(
        3, gt=0, description="Latest as-of dates held out for validation."
    )
    holdout_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of customers held out when there is one as-of date."
    )
    calibration_fraction: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Share of training customers used for early stopping and calibration.",
    )
    nps_selection_correction: Literal["ipw", "none"] = Field(
        "ipw",
        description="How the NPS model corrects for who answers surveys: inverse propensity "
        "weighting of respondents, or nothing.",
    )
    max_ipw_weight: float = Field(20.0, gt=1, description="Cap on a respondent's weight.")
    monotone_constraints: bool = Field(
        True,
        description="Churn risk never falls with more unresolved tickets or less usage.",
    )
    candidates: list[Literal["lightgbm", "linear", "blend"]] = Field(
        ["lightgbm", "linear", "blend"],
        min_length=1,
        description="Candidate models each head chooses from on the inner validation windows.",
    )
    search_lightgbm: bool = Field(
        True, description="Try a simpler and a richer LightGBM beside the configured one."
    )
    search_origins: int = Field(
        2, gt=0, description="Rolling inner validation windows the choice is averaged over."
    )
    seed: int = 42
    lightgbm: LightGBMSettings = Field(default_factory=LightGBMSettings)


class RegistrySettings(_Section):
    """MLflow tracking and model registry."""

    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default: a SQLite store under the project home."
    )
    registry_uri: str | None = Field(None, description="Model registry URI; default: tracking URI.")
    experiment_name: str = "npsrisk"
    model_name: str = Field("npsrisk", description="Registered model name.")
    champion_alias: str = "champion"
    promotion_tolerance: float = Field(
        0.0,
        ge=0,
        description="How much worse one head may be and still count as not worse.",
    )


class RiskTierSettings(_Section):
    """Churn probability (or, without a churn model, detractor probability) for each tier."""

    churn_high: float = Field(0.30, gt=0, lt=1, description="Churn probability for 'high'.")
    churn_medium: float = Field(0.12, gt=0, lt=1, description="Churn probability for 'medium'.")
    detractor_high: float = Field(0.60, gt=0, lt=1, description="Detractor probability for 'high'.")
    detractor_medium: float = Field(
        0.35, gt=0, lt=1, description="Detractor probability for 'medium'."
    )


class ServingSettings(_Section):
    """The prediction service and batch scoring. API keys are not settings: they come from
    NPSRISK_API_KEYS / NPSRISK_API_KEYS_FILE (and NPSRISK_ADMIN_KEYS[_FILE])."""

    host: str = Field("127.0.0.1", description="Address `npsrisk serve` binds.")
    port: int = Field(3000, gt=0, lt=65536, description="Port `npsrisk serve` binds.")
    workers: int = Field(
        0,
        ge=0,
        description="Service worker processes; 0: one per CPU core, at most 4 (each worker "
        "holds its own copy of the model and the feature store).",
    )
    spare_workers: int = Field(
        1,
        ge=0,
        description="Loaded worker processes that accept nothing until a serving worker dies, "
        "then take its place within milliseconds (the arbiter's replacement needs seconds of "
        "imports and becomes the next spare). Each holds its own copy of the model and store.",
    )
    threads: int = Field(4, gt=0, description="Request threads per worker.")
    max_concurrency: int = Field(
        8,
        ge=0,
        description="Requests one worker holds at once (running or waiting for a thread; "
        "twice the default threads: deeper queues only add latency); more are shed with 429 "
        "and Retry-After instead of queueing. 0: no limit.",
    )
    retry_after_seconds: int = Field(
        1, gt=0, description="The Retry-After a shed (429) request is told to wait."
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, description="A request still unanswered after this gets 504 (in the envelope)."
    )
    body_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A request body (e.g. one whose Content-Length promises more than it "
        "sends) must arrive within this; else 408.",
    )
    max_header_bytes: int = Field(
        16_384, gt=0, description="Largest total size of a request's headers; more: 431."
    )
    max_headers: int = Field(100, gt=0, description="Most headers in one request; more: 431.")
    drain_seconds: float = Field(
        3.0,
        ge=0,
        description="After SIGTERM a worker keeps answering this long (with Connection: close "
        "and /readyz 503) so keep-alive clients move away without connection resets.",
    )
    reload_check_seconds: float = Field(
        1.0,
        gt=0,
        description="How often each worker looks at the reload stamp another worker's "
        "/reload (or SIGHUP) wrote, so one reload reaches every worker.",
    )
    max_ids_per_request: int = Field(1000, gt=0, description="Most customer ids in one request.")
    max_records_per_request: int = Field(
        1000, gt=0, description="Most inline records in one request."
    )
    max_body_bytes: int = Field(1_048_576, gt=0, description="Largest request body accepted.")
    max_top_k: int = Field(50, gt=0, description="Largest top_k a request may ask for.")
    store_poll_seconds: float = Field(
        5.0, ge=0, description="How often the service looks for a newer feature store (0: never)."
    )
    champion_poll_seconds: float = Field(
        0.0, ge=0, description="How often the service checks the champion alias (0: only /reload)."
    )
    inference_log: bool = Field(True, description="Record every prediction for monitoring.")
    inference_log_retention_days: int = Field(
        400,
        ge=0,
        description="Days of inference log kept (older days are deleted by the service); at "
        "least training.horizon_days + 30 so realized performance can still be joined. "
        "0: keep forever.",
    )
    inference_log_compaction: bool = Field(
        True,
        description="Compact each finished day of the inference log from JSONL into one "
        "Parquet file (the service does it daily; `read_inference_log` reads both).",
    )
    risk_tiers: RiskTierSettings = Field(default_factory=RiskTierSettings)

    @property
    def worker_count(self) -> int:
        """``workers``, or with 0 one per core (at most 4: each worker holds a full copy)."""
        return self.workers or max(1, min(os.cpu_count() or 1, 4))


class UiSettings(_Section):
    """The success teams' page at /ui. The session secret is not a setting: it comes from
    NPSRISK_UI_SESSION_SECRET or a file under the home (run/ui-session-secret), made once."""

    secure_cookie: bool = Field(
        True,
        description="Mark the session cookie Secure (browsers keep it on https:// and on "
        "http://127.0.0.1 / localhost); turn off only for plain HTTP on another host.",
    )
    session_hours: float = Field(
        12.0, gt=0, le=24 * 30, description="A sign-in lasts this long, then asks again."
    )
    page_size: int = Field(50, ge=10, le=500, description="Customers per page of the at-risk list.")
    max_failed_signins: int = Field(
        5,
        ge=1,
        le=1000,
        description="Wrong API keys accepted from one client address within "
        "``signin_window_seconds`` before its sign-ins are refused (429) until the window ends.",
    )
    signin_window_seconds: float = Field(
        300.0, gt=0, le=86_400, description="The window failed sign-ins are counted over."
    )
    source_path: Path | None = Field(
        None,
        description="The raw export (folder or DuckDB file) the customer view reads NPS history "
        "and masked verbatims from; without it the view says so.",
    )


class InterventionSettings(_Section):
    """Acting on predictions: playbooks, pre-survey plans, control group, outcomes, forecast."""

    playbooks_path: Path | None = Field(
        None, description="Your playbook YAML; default: the playbooks shipped in interventions/."
    )
    owners_path: Path | None = Field(
        None,
        description="CSV/YAML mapping customers or segments to owners (columns customer_id or "
        "a segment column, owner); overrides the customers table's owner column.",
    )
    control_share: float = Field(
        0.10, ge=0, lt=1, description="Share of each survey wave's tiers held out as control."
    )
    lead_time_days: int = Field(
        5, ge=0, description="Days a follow-up needs before the survey; less is flagged too_soon."
    )
    segment_columns: list[str] = Field(
        default=["plan_tier", "region", "industry"],
        description="Columns of `customers` that at-risk filters and the forecast break down by.",
    )
    bootstrap_samples: int = Field(
        500, ge=50, description="Bootstrap resamples behind outcome and forecast intervals."
    )
    interval: float = Field(0.90, gt=0.5, lt=1, description="Coverage of reported intervals.")
    segment_drop_points: float = Field(
        5.0,
        gt=0,
        description="A segment whose forecast NPS is this far below its last "
        "measured NPS raises segment.dropped.",
    )
    detractor_alerts: bool = Field(
        True, description="Route each new detractor answer to its owner (detractor.answered)."
    )
    seed: int | None = Field(
        None, description="Control-group seed; default: a fresh one per wave, recorded with it."
    )


class DatabaseSettings(_Section):
    """The one database (alert outbox, interventions), migrated by Alembic."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://host/db; default: SQLite file "
        "npsrisk.db under the project home. A password belongs in NPSRISK_DATABASE__URL, "
        "never in the YAML file.",
    )


class WebhookEndpoint(_Section):
    """One receiver of signed webhooks."""

    url: str = Field(description="Where alerts are POSTed.")
    types: list[str] = Field(
        default_factory=list, description="Alert types sent here; empty: every type."
    )


class AlertSettings(_Section):
    """Alert channels and the outbox relay. Webhook signing secrets are not settings: they
    come from NPSRISK_WEBHOOK_SECRETS (comma-separated) or NPSRISK_WEBHOOK_SECRETS_FILE."""

    console: bool = Field(True, description="Print alerts to the console (stderr).")
    file: bool = Field(True, description="Append alerts to a JSONL file.")
    file_path: Path | None = Field(
        None, description="The JSONL file; default: alerts/alerts.jsonl under the project home."
    )
    webhooks: list[WebhookEndpoint] = Field(
        default_factory=list,
        description="Webhook receivers, each `{url, types}`; signed per Standard Webhooks.",
    )
    max_attempts: int = Field(
        10, ge=1, description="Tries of one delivery before it is dead (left for redelivery)."
    )
    backoff_seconds: float = Field(
        5.0, gt=0, description="Wait before the second try; doubles each try, with jitter."
    )
    max_backoff_seconds: float = Field(3600.0, gt=0, description="Longest wait between tries.")
    timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one webhook request.")
    lease_seconds: float = Field(
        300.0,
        gt=0,
        description="How long a relay owns the deliveries it claimed; after that (a relay that "
        "died) another relay may retry them, with the same webhook-id.",
    )
    relay_poll_seconds: float = Field(
        5.0, ge=0, description="How often the service's background relay delivers (0: never)."
    )


class MonitoringSettings(_Section):
    """Drift, performance estimation and decay, and the retrain trigger."""

    numerical_stattest: str = Field(
        "wasserstein",
        description="Evidently drift method for numeric columns (an effect size, not a p-value).",
    )
    numerical_threshold: float = Field(
        0.1, gt=0, description="A numeric column drifts when its method's score reaches this."
    )
    categorical_stattest: str = Field(
        "jensenshannon", description="Evidently drift method for categorical columns."
    )
    categorical_threshold: float = Field(
        0.1, gt=0, description="A categorical column drifts when its score reaches this."
    )
    drift_share: float = Field(
        0.3,
        gt=0,
        le=1,
        description="The verdict is drift when this share of (non by-construction) features "
        "drifts, or a prediction drifts, or a segment moved.",
    )
    by_construction: list[str] = Field(
        default=[
            "tenure_days",
            "days_since_signup",
            "nps_last_age_days",
            "nps_responses",
            "*_days_since_active",
            "usage_*_trend",
            "usage_*_drop",  # a flag on the trend
        ],
        description="Features (names or shell patterns) that move with the calendar: "
        "reported, never raising the verdict.",
    )
    segment_columns: list[str] = Field(
        default=["plan_tier", "region", "tenure_band"],
        description="Segments compared one by one, so a drift confined to one is named.",
    )
    segment_match_on: str | None = Field(
        "tenure_days",
        description="Each segment's reference is reweighted to the current window's mix of "
        "this column before its tests (tenure moves with the calendar and limits every "
        "windowed count); null compares the raw windows.",
    )
    segment_min_columns: int = Field(
        2,
        ge=1,
        description="Columns that must move in a segment (unless its predictions moved) for "
        "the segment to count as moved; fewer are reported, not counted.",
    )
    segment_calm_baseline: bool = Field(
        True,
        description="A segment's column moves only by more than the reference's own periods "
        "move among themselves (each period against the others).",
    )
    segment_match_bins: int = Field(
        20, ge=2, le=200, description="Quantile bins of segment_match_on for that reweighting."
    )
    min_segment_rows: int = Field(
        200, ge=10, description="Smallest segment (in both windows) that is compared."
    )
    fdr_alpha: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="False discovery rate of the column x segment tests (Benjamini-Hochberg).",
    )
    sample_rows: int = Field(
        100_000, ge=1000, description="Rows per window above which drift runs on a sample."
    )
    decay_auc: float = Field(
        0.05, gt=0, description="Churn ROC-AUC drop (vs training) that counts as decay."
    )
    decay_mae: float = Field(
        0.3, gt=0, description="NPS MAE rise (vs training) that counts as decay."
    )
    bootstrap: int = Field(
        200, ge=20, description="Bootstrap resamples for the intervals of realized metrics."
    )
    min_labelled_rows: int = Field(
        200, ge=10, description="Fewest labelled rows for a period or segment to be judged."
    )
    max_model_age_days: int = Field(
        90, ge=1, description="`retrain --if-needed` retrains a champion older than this."
    )


class Settings(BaseSettings):
    """Everything configurable, read from YAML with ``NPSRISK_*`` environment overrides."""

    model_config = SettingsConfigDict(
        env_prefix="NPSRISK_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    home: Path = Field(
        DEFAULT_HOME, description="Where stores, runs and reports live (NPSRISK_HOME)."
    )
    data: DataSettings = Field(default_factory=DataSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    text: TextSettings = Field(default_factory=TextSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    interventions: InterventionSettings = Field(default_factory=InterventionSettings)
    ui: UiSettings = Field(default_factory=UiSettings)

    @model_validator(mode="after")
    def _retention_covers_the_horizon(self) -> Settings:
        days = self.serving.inference_log_retention_days
        floor = self.training.horizon_days + 30
        if days and days < floor:
            raise ValueError(
                f"serving.inference_log_retention_days is {days}, shorter than "
                f"training.horizon_days + 30 = {floor}: predictions would be deleted before "
                f"their outcomes are known. Set it to at least {floor} (or 0 to keep forever)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        yaml_path = _yaml_path.get()
        if yaml_path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
        return tuple(sources)

    # Derived paths: computed, never created here (no side effects on construction).
    @cached_property
    def home_path(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def reports_path(self) -> Path:
        return self.home_path / "reports"

    @property
    def inference_log_path(self) -> Path:
        return self.home_path / "inference_log"

    @property
    def serving_cache_path(self) -> Path:
        """Local copies of loaded champions, so a restarted worker skips MLflow."""
        return self.home_path / "serving_cache"

    @property
    def run_path(self) -> Path:
        """Per-instance runtime files: metrics folders and the reload stamp."""
        return self.home_path / "run"

    @property
    def mlflow_db_path(self) -> Path:
        return self.home_path / "mlflow.db"

    @property
    def artifacts_path(self) -> Path:
        return self.home_path / "mlartifacts"

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.home_path / 'npsrisk.db'}"

    @property
    def alerts_file_path(self) -> Path:
        return self.alerts.file_path or self.home_path / "alerts" / "alerts.jsonl"

    @property
    def tracking_uri(self) -> str:
        return self.registry.tracking_uri or f"sqlite:///{self.mlflow_db_path}"

    @property
    def registry_uri(self) -> str:
        return self.registry.registry_uri or self.tracking_uri


def find_config_path(explicit: Path | None = None) -> Path | None:
    """The YAML file to read: ``--config``, else ``$NPSRISK_CONFIG``, else ./npsrisk.yaml."""
    if explicit is not None:
        candidate, origin = explicit, "--config"
    elif os.environ.get(CONFIG_ENV_VAR):
        candidate, origin = Path(os.environ[CONFIG_ENV_VAR]), CONFIG_ENV_VAR
    else:
        default = Path.cwd() / DEFAULT_CONFIG_NAME
        return default if default.is_file() else None
    if not candidate.expanduser().is_file():
        raise ConfigError(
            f"Configuration file {candidate} (from {origin}) does not exist. "
            f"Create it, or unset {CONFIG_ENV_VAR} to use the defaults."
        )
    return candidate.expanduser()


def load_settings(config_path: Path | None = None, **overrides: Any) -> Settings:
    """Read settings from YAML plus environment; raise ConfigError with a fix on bad values."""
    path = find_config_path(config_path)
    token = _yaml_path.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        where = f" in {path}" if path else ""
        raise ConfigError(
            f"Invalid configuration{where}: {problems}. "
            "Fix the YAML file or the NPSRISK_* environment variable "
            "(nested keys use '__', e.g. NPSRISK_TRAINING__HORIZON_DAYS=60)."
        ) from None
    except Exception as exc:  # e.g. a YAML syntax error
        raise ConfigError(f"Could not read configuration {path}: {exc}") from None
    finally:
        _yaml_path.reset(token)

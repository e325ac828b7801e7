"""`npsrisk`: one command with a subcommand per step of the pipeline."""

from __future__ import annotations

import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import yaml

from npsrisk import console as out
from npsrisk.cli_act import register as _register_act
from npsrisk.cli_act import register_review as _register_review
from npsrisk.settings import ConfigError, Settings, load_settings
from npsrisk.typer_plain import PlainTyper

app = PlainTyper(
    name="npsrisk",
    help="Predict next NPS and churn risk per customer, explain it, and act before the survey.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="YAML settings file (default: $NPSRISK_CONFIG or ./npsrisk.yaml)."
    ),
]
DataArg = Annotated[
    Path, typer.Argument(help="Folder of <table>.parquet/.csv files, or a DuckDB file.")
]


SourceArg = Annotated[
    str,
    typer.Argument(
        help="Folder of <table>.parquet/.csv files, or a DuckDB file; with --engine spark any "
        "folder Spark reads (s3a://, hdfs://, abfss:// where the cluster has the connectors)."
    ),
]


class Engine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


EngineOption = Annotated[
    Engine | None,
    typer.Option(help="duckdb (one machine) or spark (a cluster); default: features.backend."),
]


def _engine(settings: Settings, engine: Engine | None) -> str:
    return engine.value if engine is not None else settings.features.backend


def _spark(settings: Settings):
    from features.spark import spark_session

    spark = settings.spark
    out.console.print(f"[dim]Spark master {spark.master} ({spark.app_name})[/dim]")
    return spark_session(settings)


class FileFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"
    duckdb = "duckdb"


def _settings(ctx: typer.Context) -> Settings:
    return load_settings(ctx.obj.get("config") if ctx.obj else None)


@app.callback()
def main_callback(ctx: typer.Context, config: ConfigOption = None) -> None:
    ctx.obj = {"config": config}
    out.quiet_libraries()


@app.command("demo-data")
def demo_data(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the six contract tables into.")],
    customers: Annotated[int, typer.Option(min=10, help="Number of customers.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 7,
    months: Annotated[int, typer.Option(min=4, max=120, help="Months of history.")] = 24,
    start: Annotated[
        str, typer.Option(metavar="YYYY-MM-DD", help="First day of the history.")
    ] = "2024-01-01",
    bad_rows: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of contract-breaking rows to inject.")
    ] = 0.0,
    drift_event: Annotated[
        bool,
        typer.Option(help="Inject an incident that hits one segment (region=emea) for a quarter."),
    ] = False,
    file_format: Annotated[
        FileFormat, typer.Option("--format", help="Output format.")
    ] = FileFormat.parquet,
    continue_from: Annotated[
        Path | None,
        typer.Option(
            help="A `npsrisk presurvey` plan: regenerate the same company (same options) and "
            "continue it past the export, the plan's treated customers getting known effects."
        ),
    ] = None,
    world: Annotated[
        str,
        typer.Option(help="Which company's mechanics: default, seats or lowtouch (see README)."),
    ] = "default",
) -> None:
    """Generate a realistic SaaS company's tables, with ground truth for the oracle."""
    from demo.generator import WORLDS, DemoConfig, make_demo
    from demo.interventions import demo_hooks

    if world not in WORLDS:
        raise ConfigError(f"--world must be one of {', '.join(WORLDS)}, not {world!r}")
    try:
        first_day = date.fromisoformat(start)
    except ValueError:
        raise ConfigError(f"--start must be a date like 2024-01-01, not {start!r}") from None
    cfg = DemoConfig(
        customers=customers,
        seed=seed,
        months=months,
        start=first_day,
        bad_rows=bad_rows,
        drift_event=drift_event,
        file_format=file_format.value,
        world=world,
    )
    try:
        on_block, finish = demo_hooks(cfg, out_dir, continue_from)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    with out.steps(cfg.blocks * 9 + 1, "demo-data") as step:
        manifest = make_demo(cfg, out_dir, progress=step, on_block=on_block)
    extra = finish()
    for table, rows in manifest["rows"].items():
        out.console.print(f"  {table:<14} {rows:>12,} rows")
    if cfg.bad_rows:
        injected = sum(sum(v.values()) for v in manifest["injected_bad_rows"].values())
        out.console.print(f"  injected {injected:,} contract-breaking rows")
    if manifest["drift_event"]:
        d = manifest["drift_event"]
        out.console.print(f"  drift event: {d['segment']} from {d['start']} to {d['end']}")
    out.wrote("contract tables", out_dir.resolve())
    out.wrote("ground truth (not a contract table)", (out_dir / "ground_truth").resolve())
    for what, path in extra.items():
        out.wrote(what, path.resolve())


@app.command()
def validate(
    ctx: typer.Context,
    data: SourceArg,
    report_dir: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default: under the project home).")
    ] = None,
    engine: EngineOption = None,
) -> None:
    """Check every table against the data contract and set bad rows aside with reasons."""
    from features.loading import load_tables
    from features.validation import validate_tables, write_report_files, write_validation_report
    from npsrisk.outputs import new_report_dir

    settings = _settings(ctx)
    target = report_dir or new_report_dir(settings, "validation")
    if _engine(settings, engine) == "spark":
        from features.spark import validate_spark, write_quarantine

        spark = _spark(settings)
        validated = validate_spark(spark, data, settings.data)
        write_report_files(validated.report, target)
        write_quarantine(validated, str(target.resolve() / "quarantine"))
    else:
        validated = validate_tables(load_tables(Path(data)), settings.data)
        write_validation_report(validated, target)
    report = validated.report
    out.print_frame(report.summary().set_index("table"), title=f"Validation of {data}")
    if report.rows_set_aside:
        out.print_frame(
            report.reason_counts().set_index(["table", "reason"]), title="Rows set aside, by reason"
        )
    if report.absent_tables:
        out.console.print(
            f"absent tables (their features are not built): {', '.join(report.absent_tables)}"
        )
    for t in report.tables.values():
        if t.note:
            out.console.print(f"[yellow]{t.table}[/yellow]: {t.note}")
    out.console.print(f"rows set aside: {report.rows_set_aside:,}")
    out.wrote("validation report", target / "report.md")
    if report.rows_set_aside:
        out.wrote("quarantined rows with reasons", target / "quarantine")


@app.command()
def train(
    ctx: typer.Context,
    data: SourceArg,
    horizon_days: Annotated[
        int | None,
        typer.Option(min=1, help="Label horizon in days (default: training.horizon_days)."),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="Ground truth for the oracle (default: DATA/ground_truth on demo data)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="One fixed as-of date (YYYY-MM-DD) instead of monthly snapshots; labels come "
            "from the horizon after it.",
        ),
    ] = None,
    engine: EngineOption = None,
) -> None:
    """Train churn and NPS models, log them to MLflow, register, and apply the promotion gate."""
    from demo.generator import find_ground_truth
    from features.loading import is_url
    from training.pipeline import train as run_training

    settings = _settings(ctx)
    chosen = _engine(settings, engine)
    if chosen == "spark":
        from features.spark import require_pyspark

        require_pyspark()
    # A URL goes to Spark as given (Path would fold s3a://b into s3a:/b); demo ground truth
    # sits beside a local folder only.
    source = data if is_url(data) else Path(data)
    truth_path = truth or (None if is_url(data) else find_ground_truth(source))
    with out.steps(8, "train") as step:
        result = run_training(
            source,
            settings,
            horizon_days,
            truth_path,
            progress=step,
            as_of=_as_of_date(as_of),
            engine=chosen,
        )
    for note in result.notes:
        out.console.print(f"[dim]note:[/dim] {note}")
    out.print_frame(result.headline.T, title="Validation window (held out, later in time)")
    if result.checks:
        out.console.print(
            "survey-response checks: " + ", ".join(f"{k}={v:.3f}" for k, v in result.checks.items())
        )
    verdict = "[green]champion[/green]" if result.promoted else "[yellow]challenger[/yellow]"
    out.console.print(
        f"model {result.model_name} v{result.model_version} is {verdict}: "
        + "; ".join(result.reasons)
    )
    out.console.print(f"MLflow run {result.run_id} in {settings.tracking_uri}")
    out.wrote("evaluation report and plots", result.report_dir)


@app.command()
def evaluate(
    ctx: typer.Context,
    run_id: Annotated[
        str | None, typer.Option(help="Training run to show (default: the latest).")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Backtest the current champion on this data's latest window."),
    ] = None,
    horizon_days: Annotated[
        int | None, typer.Option(min=1, help="Label horizon for --data.")
    ] = None,
) -> None:
    """Show a training run's held-out evaluation, or backtest the champion on new data."""
    from training.evaluation import headline
    from training.review import backtest_champion, read_run_evaluation

    settings = _settings(ctx)
    if data is not None:
        from demo.generator import find_ground_truth

        result = backtest_champion(data, settings, horizon_days, find_ground_truth(data))
        window = ", ".join(str(d.date()) for d in result.valid_as_of)
        out.print_frame(headline(result.metrics).T, title=f"Champion v{result.version} on {window}")
        out.wrote("metrics", result.report_dir / "metrics.csv")
        return
    evaluation = read_run_evaluation(settings, run_id)
    run = evaluation.run
    out.print_frame(
        headline(evaluation.metrics).T, title=f"Run {run.info.run_id} ({run.info.run_name})"
    )
    out.console.print(evaluation.report_markdown)
    tags = run.data.tags
    if "promotion" in tags:
        out.console.print(
            f"model version {tags.get('model_version')}: {tags['promotion']} "
            f"({tags.get('promotion_reason', '')})"
        )


def _as_of_option(value: str | None, tables) -> pd.Timestamp:  # noqa: F821
    from training.snapshots import data_window

    given = _as_of_date(value)
    return given if given is not None else data_window(tables)[1]


def _champion(settings: Settings):
    from serving.state import NotReadyError, load_champion

    try:
        return load_champion(settings)
    except NotReadyError as exc:
        raise ConfigError(str(exc)) from None


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of", metavar="YYYY-MM-DD", help="As-of date; default: the latest date in the data."
    ),
]


def _as_of_date(value: str | None) -> pd.Timestamp | None:  # noqa: F821
    import pandas as pd

    if value is None:
        return None
    try:
        return pd.Timestamp(date.fromisoformat(value))
    except ValueError:
        raise ConfigError(f"--as-of must be a date like 2025-06-30, not {value!r}") from None


def _report_capped(capped: int, scorer) -> None:
    if capped:
        from text_analytics.signals import MAX_MESSAGE_CHARS

        limit = getattr(scorer, "max_chars", MAX_MESSAGE_CHARS)  # older pickles: the default
        out.console.print(
            f"[yellow]{capped:,} messages were longer than {limit:,} characters: "
            "only their beginning was scored[/yellow] (text.max_message_chars)"
        )


def _report_run(run, bundle) -> None:
    """What a pass over an export (score, materialize) set aside and capped on the way."""
    if run.rows_set_aside:
        out.console.print(
            f"[yellow]{run.rows_set_aside:,} rows of these customers broke the data contract and "
            "were set aside[/yellow] (run `npsrisk validate DATA` for the full report)"
        )
    _report_capped(run.capped_messages, bundle.text)


@app.command()
def materialize(
    ctx: typer.Context, data: SourceArg, as_of: AsOfOption = None, engine: EngineOption = None
) -> None:
    """Build every active customer's features as of a date into the service's feature store."""
    from features.store import materialize_features

    settings = _settings(ctx)
    champion = _champion(settings)
    when = _as_of_date(as_of)
    if _engine(settings, engine) == "spark":
        from features.spark import materialize_spark

        info, report = materialize_spark(
            _spark(settings),
            data,
            champion.bundle,
            settings.home_path,
            when,
            champion.card.version,
            settings.data,
        )
        if report.rows_set_aside:
            out.console.print(
                f"[yellow]{report.rows_set_aside:,} rows broke the data contract and were set "
                "aside[/yellow] (run `npsrisk validate DATA --engine spark` for the quarantine)"
            )
    else:
        with out.counting("materialize", "customers") as update:
            info = materialize_features(
                Path(data),
                champion.bundle,
                settings.home_path,
                when,
                champion.card.version,
                progress=update,
                data=settings.data,
            )
        _report_run(info.run, champion.bundle)
    out.console.print(
        f"{info.rows:,} active customers as of {info.features_as_of.date()} for model "
        f"{champion.card.name} v{champion.card.version}; a running service picks it up by itself"
    )
    out.wrote("feature store (now current)", info.path)


@app.command()
def score(
    ctx: typer.Context,
    data: SourceArg,
    out_file: Annotated[
        str,
        typer.Option(
            "--out",
            help="Output file: .parquet or .csv; with --engine spark a folder (any path Spark "
            "writes) of Parquet part files and a _SUCCESS marker.",
        ),
    ],
    as_of: AsOfOption = None,
    explain: Annotated[bool, typer.Option(help="Include SHAP drivers.")] = True,
    top_k: Annotated[int, typer.Option(min=1, max=50, help="Drivers per target.")] = 5,
    engine: EngineOption = None,
) -> None:
    """Score every customer active at a date with the champion, drivers included."""
    from serving.batch import score_source

    settings = _settings(ctx)
    if _engine(settings, engine) == "spark":
        _score_spark(settings, data, out_file, _as_of_date(as_of), explain, top_k)
        return
    out_file = Path(out_file)
    if out_file.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError(f"--out must end in .parquet or .csv, not {out_file.name!r}")
    champion = _champion(settings)
    with out.counting("score", "customers") as update:
        result = score_source(
            Path(data),
            champion.bundle,
            champion.card,
            out_file,
            _as_of_date(as_of),
            explain,
            top_k,
            settings.serving.risk_tiers,
            progress=update,
            data=settings.data,
        )
    _report_run(result.run, champion.bundle)
    out.console.print(
        f"{result.rows:,} customers scored with {champion.card.name} "
        f"v{champion.card.version} (features as of {result.features_as_of})"
    )
    out.wrote("predictions", out_file.resolve())


def _score_spark(settings: Settings, data: str, out_file: str, as_of, explain, top_k) -> None:
    import tempfile

    from serving.distributed import score_spark

    spark = _spark(settings)
    champion = _champion(settings)
    with tempfile.TemporaryDirectory(prefix="npsrisk-spark-") as work:
        result = score_spark(
            spark,
            data,
            champion.bundle,
            champion.card,
            out_file,
            as_of,
            explain,
            top_k,
            settings.serving.risk_tiers,
            Path(work),
            data=settings.data,
        )
    if result.rows_set_aside:
        out.console.print(
            f"[yellow]{result.rows_set_aside:,} rows broke the data contract and were set "
            "aside[/yellow] (run `npsrisk validate DATA --engine spark` for the quarantine)"
        )
    out.console.print(
        f"{result.rows:,} customers scored on Spark with {champion.card.name} "
        f"v{champion.card.version} (features as of {result.features_as_of})"
    )
    out.wrote("predictions (Parquet folder, _SUCCESS marker)", result.path)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default: serving.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serving.port).")] = None,
) -> None:
    """Start the prediction service (BentoML) after checking it has what it needs."""
    import os
    import signal
    import subprocess

    from serving.http import KeyRing
    from serving.state import NotReadyError, champion_version, load_store

    settings = _settings(ctx)
    problems = []
    if not KeyRing("NPSRISK_API_KEYS", "NPSRISK_API_KEYS_FILE"):
        problems.append(
            "no API key: set NPSRISK_API_KEYS (comma-separated) or "
            "NPSRISK_API_KEYS_FILE (one key per line)"
        )
    try:
        version = champion_version(settings)
        store = load_store(settings)
    except NotReadyError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("the service cannot start: " + "; ".join(problems))
    # Migrations run here, once, before any worker exists; workers only check the revision.
    from db import Database, upgrade_database

    database = Database.from_settings(settings)
    before, after = upgrade_database(database)
    database.dispose()
    if before != after:
        out.console.print(f"database migrated: {before or 'empty'} -> {after}")
    host = host or settings.serving.host
    port = port or settings.serving.port
    out.console.print(
        f"serving {settings.registry.model_name} v{version} with features as of "
        f"{store.features_as_of} on http://{host}:{port} (OpenAPI: /docs.json)"
    )
    env = {**os.environ, "NPSRISK_HOME": str(settings.home_path)}
    if ctx.obj and ctx.obj.get("config"):
        env["NPSRISK_CONFIG"] = str(Path(ctx.obj["config"]).resolve())
    command = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:NpsRiskService",
        "--host",
        host,
        "--port",
        str(port),
    ]
    # The server runs in its own session and hears of Ctrl+C or a SIGTERM from a process
    # manager through us, once, so it drains and stops its workers instead of orphaning them.
    server = subprocess.Popen(command, env=env, start_new_session=True)

    def forward(signum: int, _frame: object) -> None:
        if server.poll() is None:
            server.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    raise typer.Exit(server.wait())


text_app = PlainTyper(
    help="Text analytics: the satisfaction model and themes.", no_args_is_help=True
)
report_app = PlainTyper(help="Reports for people.", no_args_is_help=True)
app.add_typer(text_app, name="text")
app.add_typer(report_app, name="report")


@text_app.command("evaluate")
def text_evaluate(
    ctx: typer.Context,
    data: DataArg,
    folds: Annotated[int, typer.Option(min=2, max=20, help="Cross-validation folds.")] = 5,
) -> None:
    """Cross-validate the text model on this export's NPS comments, against the lexicon."""
    import pandas as pd

    from demo.generator import find_text_truth
    from features.loading import load_tables
    from features.validation import validate_tables
    from npsrisk.outputs import new_report_dir
    from text_analytics.sentiment import cross_validate
    from text_analytics.signals import extract_customer_texts
    from text_analytics.themes import evaluate_themes, load_taxonomy

    settings = _settings(ctx)
    tables = validate_tables(load_tables(data), settings.data)
    if not tables.has("nps_responses") or "comment" not in tables["nps_responses"]:
        raise ConfigError(
            f"{data} has no nps_responses with a comment column: nothing to learn from"
        )
    nps = tables["nps_responses"].dropna(subset=["comment"])
    with out.steps(2, "text evaluate") as step:
        step(f"cross-validating on {len(nps):,} comments ({folds} folds)")
        cv = cross_validate(
            nps["comment"], nps["score"], folds=folds, min_comments=settings.text.min_comments
        )
        themes = None
        truth_path = find_text_truth(data)
        step("theme accuracy against ground truth" if truth_path else "done")
        if truth_path is not None:
            texts = extract_customer_texts(tables.frames)
            truth = pd.read_parquet(truth_path)
            joined = texts.merge(truth, on=["source", "key"], how="inner")
            taxonomy = load_taxonomy(settings.text.taxonomy_path)
            themes = evaluate_themes(joined["text"], joined["themes"], taxonomy)
    table = cv.to_frame()
    out.print_frame(
        table.set_index(table.columns[0]) if len(table.columns) > 1 else table,
        title=f"Held-out comments: {cv.n_comments:,} used, {cv.folds} folds",
    )
    would_use = "the learned model" if cv.kind == "learned" else "the lexicon (too few comments)"
    out.console.print(
        f"with text.min_comments={settings.text.min_comments}, training uses {would_use}"
    )
    target = new_report_dir(settings, "text")
    table.to_csv(target / "sentiment_cv.csv", index=False)
    if themes is not None:
        wide = themes.pivot_table(index="theme", columns="metric", values="value")
        per_theme = wide.drop(index="all", errors="ignore")[["precision", "recall", "f1"]]
        out.print_frame(per_theme, title="Theme coding against the demo ground truth")
        if "all" in wide.index:
            overall = wide.loc["all"].dropna()
            out.console.print(", ".join(f"{k}={v:.4f}" for k, v in overall.items()))
        themes.to_csv(target / "theme_accuracy.csv", index=False)
    out.wrote("text evaluation", target)


@report_app.command("themes")
def report_themes(ctx: typer.Context, data: DataArg, as_of: AsOfOption = None) -> None:
    """Detractor themes, theme impact on NPS, sentiment per segment and masked verbatims."""
    from features.loading import load_tables
    from features.validation import validate_tables
    from npsrisk.outputs import new_report_dir
    from serving.state import NotReadyError, load_champion
    from text_analytics.report import write_theme_report
    from text_analytics.sentiment import fit_satisfaction_model
    from text_analytics.signals import TextScorer, extract_customer_texts
    from text_analytics.themes import load_taxonomy

    settings = _settings(ctx)
    with out.steps(3, "report themes") as step:
        step("loading and validating tables")
        tables = validate_tables(load_tables(data), settings.data)
        when = _as_of_option(as_of, tables)
        step("scoring customer texts")
        try:
            scorer = load_champion(settings).bundle.text
            source = "the champion's text model"
        except NotReadyError:
            scorer = None
        nps = tables["nps_responses"] if tables.has("nps_responses") else _empty_comments()
        if scorer is None:
            model = fit_satisfaction_model(nps, min_comments=settings.text.min_comments)
            scorer = TextScorer(
                model,
                load_taxonomy(settings.text.taxonomy_path),
                settings.text.negative_threshold,
                settings.text.max_message_chars,
            )
            source = "a text model fitted on this data's comments"
        messages = scorer.score(extract_customer_texts(tables.frames), "text")
        responses = scorer.score(nps.assign(comment=nps.get("comment")), "comment")
        step("writing the report")
        target = new_report_dir(settings, "themes")
        paths = write_theme_report(
            messages,
            responses,
            tables["customers"],
            target,
            as_of=when,
            model_description=f"{source}: {scorer.describe()}",
            labels=scorer.labels,
        )
    out.console.print(f"texts scored with {source} ({scorer.describe()})")
    _report_capped(
        messages.attrs.get("capped_messages", 0) + responses.attrs.get("capped_messages", 0), scorer
    )
    out.wrote("theme report", paths["html"])
    out.wrote("tables (CSV)", target)


def _empty_comments():
    import pandas as pd

    return pd.DataFrame(
        {
            "customer_id": pd.Series(dtype=object),
            "score": pd.Series(dtype=float),
            "comment": pd.Series(dtype=object),
            "responded_at": pd.Series(dtype="datetime64[ns]"),
        }
    )


db_app = PlainTyper(help="The database: alert outbox and interventions.", no_args_is_help=True)
alerts_app = PlainTyper(
    help="Alerts: list pending, sent and dead ones (the default), deliver, redeliver."
)
app.add_typer(db_app, name="db")
app.add_typer(alerts_app, name="alerts")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the database migrations (Alembic) up to the code's head; safe to repeat."""
    from db import Database, upgrade_database
    from db.engine import redacted

    settings = _settings(ctx)
    db = Database.from_settings(settings)
    before, after = upgrade_database(db)
    db.dispose()
    moved = "already current" if before == after else f"{before or 'empty'} -> {after}"
    out.console.print(f"database {redacted(db.url)}: {moved}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Show the database's migration revision and the code's head."""
    from db import Database, current_revision, head_revision
    from db.engine import redacted

    settings = _settings(ctx)
    db = Database.from_settings(settings)
    current, head = current_revision(db), head_revision()
    db.dispose()
    state = "current" if current == head else "behind: run `npsrisk db upgrade`"
    out.console.print(f"database {redacted(db.url)}: {current or 'empty'} (head {head}, {state})")


class AlertStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    dead = "dead"


@alerts_app.callback(invoke_without_command=True)
def alerts_list(
    ctx: typer.Context,
    status: Annotated[
        AlertStatus | None, typer.Option(help="Only alerts with a delivery in this state.")
    ] = None,
    alert_type: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most alerts shown, newest first.")] = 50,
) -> None:
    """List alerts newest first, with each channel's delivery state."""
    if ctx.invoked_subcommand is not None:
        return
    import pandas as pd

    from alerts import list_alerts
    from db import open_database

    settings = _settings(ctx)
    db = open_database(settings)
    views = list_alerts(db, status.value if status else None, alert_type, limit)
    db.dispose()
    if not views:
        out.console.print("no alerts" + (f" with status {status.value}" if status else ""))
        return
    rows = [
        {
            "created": v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            "id": v.id,
            "type": v.type,
            "status": v.status,
            "deliveries": ", ".join(
                f"{d['channel']}:{d['status']}({d['attempts']})" for d in v.deliveries
            ),
            "summary": v.summary[:60],
        }
        for v in views
    ]
    out.print_frame(pd.DataFrame(rows), title=f"Alerts in {settings.database_url.split('://')[0]}")
    errors = [(v.id, d) for v in views for d in v.deliveries if d["last_error"]]
    for alert_id, d in errors[:10]:
        out.console.print(f"[dim]{alert_id} {d['channel']}:[/dim] {d['last_error']}")


@alerts_app.command("deliver")
def alerts_deliver(
    ctx: typer.Context,
    loop: Annotated[
        bool, typer.Option(help="Keep delivering every alerts.relay_poll_seconds (Ctrl+C ends).")
    ] = False,
) -> None:
    """Deliver due alerts from the outbox (for cron); safe beside the service's relay."""
    import threading

    from alerts import WebhookSecretError, deliver_due, run_relay
    from db import open_database

    settings = _settings(ctx)
    db = open_database(settings)
    try:
        if loop:
            stats = run_relay(db, settings, threading.Event(), settings.alerts.relay_poll_seconds)
        else:
            stats = deliver_due(db, settings)
    except WebhookSecretError as exc:
        raise ConfigError(str(exc)) from None
    finally:
        db.dispose()
    out.console.print(f"delivered {stats.sent}, to retry later {stats.retried}, dead {stats.dead}")
    for error in stats.errors[:20]:
        out.console.print(f"[yellow]{error}[/yellow]")
    if stats.dead:
        raise typer.Exit(1)


@alerts_app.command("redeliver")
def alerts_redeliver(
    ctx: typer.Context,
    alert_ids: Annotated[
        list[str] | None, typer.Argument(help="Alert ids (msg_...) to send again.")
    ] = None,
    dead: Annotated[bool, typer.Option(help="Queue every dead delivery again.")] = False,
) -> None:
    """Queue alerts again with the same ids (receivers deduplicate), then deliver."""
    from alerts import redeliver
    from db import open_database

    if not alert_ids and not dead:
        raise ConfigError("name alert ids to redeliver, or pass --dead for every dead one")
    settings = _settings(ctx)
    db = open_database(settings)
    queued = redeliver(db, alert_ids, dead)
    db.dispose()
    out.console.print(f"queued {queued} deliveries again; `npsrisk alerts deliver` sends them")


monitor_app = PlainTyper(
    help="Monitoring: drift and performance against the serving model's reference.",
    no_args_is_help=True,
)
app.add_typer(monitor_app, name="monitor")
ModelVersionOption = Annotated[
    str | None,
    typer.Option("--model-version", help="Compare against this version (default: the champion)."),
]


def _notify(settings: Settings, alert_type: str, data: dict, summary: str, key: str) -> str | None:
    """Raise an alert into the outbox and try to deliver it now; a relay retries the rest."""
    from alerts import WebhookSecretError, deliver_due, raise_alert
    from db import open_database

    db = open_database(settings)
    try:
        alert_id = raise_alert(db, alert_type, data, summary=summary, dedup_key=key)
        try:
            deliver_due(db, settings)
        except WebhookSecretError as exc:
            out.console.print(f"[yellow]alert {alert_id} queued, not sent: {exc}[/yellow]")
        return alert_id
    finally:
        db.dispose()


def _could_not_run(what: str, exc: Exception) -> typer.Exit:
    out.fail(f"{what} could not run: {exc}")
    return typer.Exit(2)


@monitor_app.command("drift")
def monitor_drift(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--from", help="Inference log window start (YYYY-MM-DD).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="Inference log window end (default: last day).")
    ] = None,
    batch: Annotated[
        Path | None, typer.Option(help="A `npsrisk score` output (predictions only).")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="A fresh export, featurized with the model's own plan.")
    ] = None,
    as_of: AsOfOption = None,
    model_version: ModelVersionOption = None,
) -> None:
    """Feature, prediction and segment drift of a window vs the model's reference.

    Exit code 0: no drift; 1: drift (an alert is raised); 2: could not run (the reason is
    printed). Without --batch or --data the window is the inference log's last 30 days."""
    import pandas as pd

    from monitoring.drift_report import run_drift
    from monitoring.reference import load_reference
    from monitoring.windows import window_from_batch, window_from_data, window_from_log
    from npsrisk.outputs import new_report_dir

    settings = _settings(ctx)
    if sum(x is not None for x in (batch, data, since)) > 1:
        raise ConfigError("give one window: --from/--to (inference log), --batch or --data")
    reference = load_reference(settings, model_version)
    try:
        with out.steps(3, "monitor drift") as step:
            step("building the current window")
            if batch is not None:
                window = window_from_batch(batch, reference)
            elif data is not None:
                window = window_from_data(data, reference, _as_of_date(as_of))
            else:
                end = _as_of_date(until)
                if end is None:
                    from serving.inference_log import read_inference_log

                    log = read_inference_log(settings.inference_log_path)
                    if log.empty:
                        raise ConfigError(
                            f"no inference log at {settings.inference_log_path}: give --data "
                            "DATA --as-of DATE or --batch FILE instead"
                        )
                    end = pd.Timestamp(log["logged_at"].max()[:10])
                start = _as_of_date(since) or end - pd.Timedelta(days=29)
                window = window_from_log(settings.inference_log_path, reference, start, end)
            step(f"comparing {len(window.frame):,} rows with the reference (Evidently)")
            result = run_drift(settings, reference, window, new_report_dir(settings, "drift"))
            step("writing the report")
    except ConfigError:
        raise
    except Exception as exc:  # a scheduler must get 2 and a reason, not a traceback
        raise _could_not_run("monitor drift", exc) from None
    s = result.summary
    colour = "red" if result.drift else "green"
    out.console.print(f"verdict: [{colour}]{s['verdict']}[/{colour}] ({s['headline']})")
    for reason in s["reasons"]:
        out.console.print(f"  - {reason}")
    if s["sampled"]:
        out.console.print(f"[dim]sampled: {s['sampled']}[/dim]")
    for note in s["notes"]:
        out.console.print(f"[dim]note:[/dim] {note}")
    out.wrote("drift report", result.folder / "report.html")
    out.wrote("summary", result.folder / "summary.json")
    out.wrote("reports index", settings.reports_path / "index.html")
    if result.drift:
        cur = s["windows"]["current"]
        alert_id = _notify(
            settings,
            "drift.detected",
            {
                "model": s["model"],
                "verdict": s["verdict"],
                "reasons": s["reasons"],
                "share_drifted": s["share_drifted"],
                "segments_moved": s["segments_moved"][:5],
                "window": cur,
                "report": str(result.folder / "report.html"),
            },
            s["headline"],
            f"drift:{s['model']['version']}:{cur['source']}:{cur['start']}:{cur['end']}",
        )
        out.console.print(f"alert {alert_id} (drift.detected)")
        raise typer.Exit(1)


@monitor_app.command("performance")
def monitor_performance(
    ctx: typer.Context,
    data: DataArg,
    batch: Annotated[
        list[Path] | None,
        typer.Option(help="`npsrisk score` outputs whose predictions to judge (repeatable)."),
    ] = None,
    log: Annotated[bool, typer.Option(help="Also judge the inference log's predictions.")] = True,
    model_version: ModelVersionOption = None,
) -> None:
    """Realized performance: predictions joined with the outcomes DATA shows since, per period
    and segment, vs training-time figures and the CBPE estimate.

    Exit code 0: no decay; 1: decay (an alert is raised); 2: could not run."""
    from monitoring.performance_report import run_performance
    from monitoring.reference import load_reference
    from npsrisk.outputs import new_report_dir

    settings = _settings(ctx)
    reference = load_reference(settings, model_version)
    try:
        with out.steps(2, "monitor performance") as step:
            step("joining predictions with outcomes")
            result = run_performance(
                settings,
                reference,
                data,
                list(batch or []),
                log,
                new_report_dir(settings, "performance"),
            )
            step("writing the report")
    except ConfigError:
        raise
    except Exception as exc:
        raise _could_not_run("monitor performance", exc) from None
    s = result.summary
    table = result.table
    shown = [
        c
        for c in (
            "period",
            "n",
            "churn_rate",
            "expected_churn_rate",
            "roc_auc",
            "expected_roc_auc",
            "training_roc_auc",
            "mae",
            "training_mae",
            "predicted_nps",
        )
        if c in table
    ]
    overall = table[table["segment"] == "all"][shown].reset_index(drop=True)
    out.print_frame(overall, title="Realized vs estimated (CBPE) vs training")
    colour = "red" if result.decayed else "green"
    out.console.print(f"verdict: [{colour}]{s['verdict']}[/{colour}]")
    for reason in s["reasons"][:10]:
        out.console.print(f"  - {reason}")
    for note in s["notes"]:
        out.console.print(f"[dim]note:[/dim] {note}")
    out.wrote("performance report", result.folder / "report.html")
    out.wrote("reports index", settings.reports_path / "index.html")
    if result.decayed:
        alert_id = _notify(
            settings,
            "performance.decayed",
            {
                "model": s["model"],
                "reasons": s["reasons"][:10],
                "periods": [p["period"] for p in s["periods"]],
                "report": str(result.folder / "report.html"),
            },
            s["headline"],
            f"decay:{s['model']['version']}:{','.join(p['period'] for p in s['periods'])}",
        )
        out.console.print(f"alert {alert_id} (performance.decayed)")
        raise typer.Exit(1)


@app.command()
def retrain(
    ctx: typer.Context,
    data: DataArg,
    if_needed: Annotated[
        bool,
        typer.Option(
            "--if-needed",
            help="Retrain only on drift, decay, or a champion older than "
            "monitoring.max_model_age_days.",
        ),
    ] = False,
    truth: Annotated[
        Path | None,
        typer.Option(help="Ground truth for the oracle (default: DATA/ground_truth on demo data)."),
    ] = None,
) -> None:
    """Retrain on the latest data (through the same gate as `train`) when monitoring says so."""
    from datetime import UTC, datetime

    from demo.generator import find_ground_truth
    from monitoring.drift_report import run_drift
    from monitoring.reference import load_reference
    from monitoring.retrain import (
        Triggers,
        decide_triggers,
        latest_summary,
        model_age_days,
        record_trigger,
        write_retrain_report,
    )
    from monitoring.windows import window_from_data
    from npsrisk.outputs import new_report_dir
    from training.pipeline import train as run_training

    settings = _settings(ctx)
    triggers = Triggers()
    version = None
    if if_needed:
        reference = load_reference(settings)
        version = reference.version
        with out.steps(2, "retrain --if-needed") as step:
            step("drift of the latest data against the champion's reference")
            drifted = run_drift(
                settings,
                reference,
                window_from_data(data, reference, None),
                new_report_dir(settings, "drift"),
            )
            drift = {**drifted.summary, "_folder": drifted.folder}
            step("reading the latest performance report")
            performance = latest_summary(settings.reports_path, "performance", version)
        triggers = decide_triggers(
            drift,
            performance,
            model_age_days(reference.trained_at),
            settings.monitoring.max_model_age_days,
        )
        for kind, verdict in triggers.verdicts.items():
            out.console.print(f"{kind}: {verdict}")
        if triggers.age_days is not None:
            out.console.print(f"champion v{version} is {triggers.age_days:.1f} days old")
    folder = new_report_dir(settings, "retrain")
    summary = {
        "kind": "retrain",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {"name": settings.registry.model_name, "version": version},
        "reasons": triggers.reasons,
        "reports": triggers.reports,
        "if_needed": if_needed,
    }
    if if_needed and not triggers.needed:
        summary |= {"verdict": "not needed", "headline": "no drift, no decay, model not too old"}
        write_retrain_report(settings, folder, summary)
        out.console.print("decision: [green]no retrain needed[/green]")
        out.wrote("retrain decision", folder / "report.html")
        return
    for reason in triggers.reasons:
        out.console.print(f"trigger: {reason}")
    truth_path = truth or find_ground_truth(data)
    with out.steps(8, "retrain") as step:
        result = run_training(data, settings, None, truth_path, progress=step)
    record_trigger(settings, result.run_id, triggers, if_needed)
    verdict = "promoted" if result.promoted else "kept as challenger"
    summary |= {
        "verdict": verdict,
        "headline": f"v{result.model_version} {verdict}: " + "; ".join(result.reasons),
        "model": {"name": result.model_name, "version": result.model_version},
        "training": {
            "run_id": result.run_id,
            "promoted": result.promoted,
            "reasons": result.reasons,
        },
    }
    write_retrain_report(settings, folder, summary)
    colour = "green" if result.promoted else "yellow"
    out.console.print(
        f"decision: retrained; model {result.model_name} v{result.model_version} "
        f"[{colour}]{verdict}[/{colour}]: " + "; ".join(result.reasons)
    )
    out.console.print(f"MLflow run {result.run_id} records the trigger (tag retrain.trigger)")
    out.wrote("retrain decision", folder / "report.html")
    out.wrote("evaluation report and plots", result.report_dir)


@app.command()
def promote(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="The registered model version to serve.")],
    reason: Annotated[str, typer.Option(help="Why, recorded on the version in MLflow.")],
) -> None:
    """Make VERSION the champion by hand (a challenger the gate kept, a rollback), recording
    why. The service serves it after `npsrisk materialize DATA` and `POST /reload`."""
    from training.registry import configure_mlflow, promote_by_hand

    settings = _settings(ctx)
    name, alias = settings.registry.model_name, settings.registry.champion_alias
    if not settings.mlflow_db_path.is_file() and settings.registry.tracking_uri is None:
        raise ConfigError(f"no model registry under {settings.home_path}: run `npsrisk train`")
    try:
        previous = promote_by_hand(configure_mlflow(settings), name, version, alias, reason)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if previous == version:
        out.console.print(f"model {name} v{version} is already {alias}: nothing changed")
        return
    was = f" (was v{previous})" if previous else ""
    out.console.print(f"model {name} v{version} is {alias}{was}: promoted by hand: {reason}")
    out.console.print(
        "the service serves it after `npsrisk materialize DATA` and `POST /reload` "
        "(or within serving.champion_poll_seconds)"
    )


@app.command("config")
def show_config(ctx: typer.Context) -> None:
    """Print the effective settings (YAML file plus NPSRISK_* environment overrides)."""
    settings = _settings(ctx)
    data = settings.model_dump(mode="json")
    out.console.print(yaml.safe_dump(data, sort_keys=False))
    out.console.print(f"# home: {settings.home_path}\n# tracking: {settings.tracking_uri}")


# The success team's commands (presurvey, at-risk, forecast, outcomes, owners, interventions).
_register_act(app)
_register_review(app)


def main() -> None:
    """Entry point: user mistakes end with a message and exit code 2, never a traceback."""
    from features.loading import DataSourceError
    from training.snapshots import TrainingDataError

    try:
        app()
    except (ConfigError, DataSourceError, TrainingDataError) as exc:
        out.fail(str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        out.fail("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()

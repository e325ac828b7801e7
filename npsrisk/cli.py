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
from npsrisk.settings import ConfigError, Settings, load_settings

app = typer.Typer(
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
        str, typer.Option(help="First day of the history (YYYY-MM-DD).")
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
) -> None:
    """Generate a realistic SaaS company's tables, with ground truth for the oracle."""
    from demo.generator import DemoConfig, generate_demo, write_demo

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
    )
    with out.steps(15, "demo-data") as step:
        data = generate_demo(cfg, progress=step)
        written = write_demo(data, out_dir, cfg, progress=step)
    for table, rows in data.manifest["rows"].items():
        out.console.print(f"  {table:<14} {rows:>12,} rows")
    if cfg.bad_rows:
        injected = sum(sum(v.values()) for v in data.manifest["injected_bad_rows"].values())
        out.console.print(f"  injected {injected:,} contract-breaking rows")
    if data.manifest["drift_event"]:
        d = data.manifest["drift_event"]
        out.console.print(f"  drift event: {d['segment']} from {d['start']} to {d['end']}")
    out.wrote("contract tables", out_dir.resolve())
    out.wrote("ground truth (not a contract table)", written["ground_truth"].resolve())


@app.command()
def validate(
    ctx: typer.Context,
    data: DataArg,
    report_dir: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default: under the project home).")
    ] = None,
) -> None:
    """Check every table against the data contract and set bad rows aside with reasons."""
    from features.loading import load_tables
    from features.validation import validate_tables, write_validation_report
    from npsrisk.outputs import new_report_dir

    settings = _settings(ctx)
    validated = validate_tables(load_tables(data))
    target = report_dir or new_report_dir(settings, "validation")
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
    data: DataArg,
    horizon_days: Annotated[
        int | None,
        typer.Option(min=1, help="Label horizon in days (default: training.horizon_days)."),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="Ground truth for the oracle (default: DATA/ground_truth on demo data)."),
    ] = None,
) -> None:
    """Train churn and NPS models, log them to MLflow, register, and apply the promotion gate."""
    from demo.generator import find_ground_truth
    from training.pipeline import train as run_training

    settings = _settings(ctx)
    truth_path = truth or find_ground_truth(data)
    with out.steps(8, "train") as step:
        result = run_training(data, settings, horizon_days, truth_path, progress=step)
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


@app.command("config")
def show_config(ctx: typer.Context) -> None:
    """Print the effective settings (YAML file plus NPSRISK_* environment overrides)."""
    settings = _settings(ctx)
    data = settings.model_dump(mode="json")
    out.console.print(yaml.safe_dump(data, sort_keys=False))
    out.console.print(f"# home: {settings.home_path}\n# tracking: {settings.tracking_uri}")


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

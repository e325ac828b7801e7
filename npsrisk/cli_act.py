"""`npsrisk presurvey`, `at-risk`, `forecast`, `outcomes`, `owners` and `interventions`:
the success team's commands, registered on the one `npsrisk` app (see npsrisk/cli.py)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from npsrisk import console as out
from npsrisk.settings import ConfigError, Settings, load_settings
from npsrisk.typer_plain import PlainTyper

SegmentOption = Annotated[
    list[str] | None,
    typer.Option("--segment", help="Segment filter column=value (repeat; value a,b = any of)."),
]


def _settings(ctx: typer.Context) -> Settings:
    return load_settings(ctx.obj.get("config") if ctx.obj else None)


def _state(settings: Settings):
    """The same ServingState the service scores with: the champion and the current store."""
    from serving.state import NotReadyError, ServingState, load_champion, load_store

    try:
        return ServingState.build(load_champion(settings), load_store(settings))
    except NotReadyError as exc:
        raise ConfigError(str(exc)) from None


def _explained_or_none(settings: Settings, customer_ids) -> dict[str, dict]:
    """Drivers and score changes of these customers from the serving model and store, or {}
    when none is there yet (an alert still goes out, without them)."""
    from serving.acting import explained

    try:
        state = _state(settings)
    except ConfigError:
        return {}
    ids = [c for c in customer_ids if c in state.store.index]
    return explained(state, ids, settings.serving.risk_tiers, 3)


def _surveys_table(data: Path):
    """The contract's ``surveys`` table of ``data``, read and validated by the contract code."""
    from features.loading import load_tables
    from features.validation import validate_tables

    # With customers: an invitation to a customer the export does not know is set aside.
    tables = validate_tables(load_tables(data, tables=["customers", "surveys"]))
    if not tables.has("surveys"):
        raise ConfigError(
            f"{data} has no usable surveys table (invitations: customer_id, sent_at); "
            "see the data contract"
        )
    report = tables.report.tables.get("surveys")
    if report is not None and report.rows_set_aside:
        reasons = ", ".join(f"{n:,} {why}" for why, n in report.reasons.items())
        out.console.print(
            f"[yellow]surveys: {report.rows_set_aside:,} of {report.rows_read:,} rows set "
            f"aside ({reasons})[/yellow]"
        )
    return tables["surveys"]


def _acting(settings: Settings):
    from interventions.owners import OwnersError
    from interventions.playbooks import PlaybookError
    from serving.acting import Acting

    acting = Acting(settings)
    try:
        acting.playbooks  # noqa: B018  (validate the playbooks up front: errors name the key)
    except (PlaybookError, OwnersError) as exc:
        raise ConfigError(str(exc)) from None
    return acting


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} must be a date like 2025-07-15, not {value!r}") from None


def _segments(values: list[str] | None) -> dict[str, str]:
    segments = {}
    for item in values or []:
        column, sep, value = item.partition("=")
        if not sep or not column.strip() or not value.strip():
            raise ConfigError(f"--segment takes column=value, not {item!r}")
        segments[column.strip()] = value.strip()
    return segments


def _write_frame(frame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def _sync_owners(acting, data: Path) -> int:
    from features.loading import load_tables
    from interventions.owners import account_owners

    customers = load_tables(data, tables=["customers"]).frames["customers"]
    return acting.store.set_account_owners(account_owners(customers))


def register(app: typer.Typer) -> None:
    """Add the commands to the `npsrisk` app."""
    interventions_app = PlainTyper(
        help="The closed loop: list, move and reassign interventions.", no_args_is_help=True
    )
    app.add_typer(interventions_app, name="interventions")

    @app.command()
    def presurvey(
        ctx: typer.Context,
        schedule: Annotated[
            Path, typer.Argument(help="CSV or Parquet with customer_id, survey_date.")
        ],
        data: Annotated[
            Path | None,
            typer.Option(help="Contract tables: refresh owners from customers.owner first."),
        ] = None,
        today: Annotated[
            str | None, typer.Option(help="Planning date (YYYY-MM-DD); default: today (UTC).")
        ] = None,
        seed: Annotated[
            int | None, typer.Option(help="Control-group seed; default: a recorded fresh one.")
        ] = None,
        dry_run: Annotated[bool, typer.Option(help="Plan without storing anything.")] = False,
        out_file: Annotated[
            Path | None, typer.Option("--out", help="Also write the plan here (.csv/.parquet).")
        ] = None,
    ) -> None:
        """Plan outreach before a survey wave; every scheduled customer is listed, none dropped."""
        import pandas as pd

        from interventions.schedule import ScheduleError, read_schedule
        from npsrisk.outputs import new_report_dir

        settings = _settings(ctx)
        try:
            parsed = read_schedule(schedule)
        except ScheduleError as exc:
            raise ConfigError(str(exc)) from None
        acting = _acting(settings)
        if data is not None:
            synced = _sync_owners(acting, data)
            out.console.print(f"owners: {synced:,} updated from {data}/customers")
        state = _state(settings)
        plan, created, unknown = acting.plan(
            state,
            parsed.rows,
            "cli",
            planned_on=_date(today, "--today"),
            dry_run=dry_run,
            seed=seed,
        )
        rows = []
        for item in plan.items:
            row = item.to_dict()
            prediction = row.pop("prediction") or {}
            probs = prediction.get("category_probabilities") or {}
            row.pop("segments")
            row.update(
                intervention_id=created.get(item.customer_id) or item.open_intervention_id,
                churn_probability=prediction.get("churn_probability"),
                p_detractor=probs.get("detractor"),
                nps_category=prediction.get("nps_category"),
                risk_tier=prediction.get("risk_tier"),
                why="; ".join(row["why"]),
                drivers=",".join(row["drivers"]),
                themes=",".join(row["themes"]),
                wave_id=plan.wave_id,
                seed=plan.seed,
            )
            row.pop("open_intervention_id")
            rows.append(row)
        frame = pd.DataFrame(rows)
        folder = new_report_dir(settings, "presurvey")
        _write_frame(frame, folder / "plan.csv")
        (folder / "wave.json").write_text(
            json.dumps(
                {
                    "wave_id": plan.wave_id,
                    "seed": plan.seed,
                    "planned_on": str(plan.planned_on),
                    "control_share": plan.control_share,
                    "counts": plan.counts(),
                    "stored": not dry_run,
                    "set_aside_rows": len(parsed.set_aside),
                },
                indent=2,
            )
        )
        if len(parsed.set_aside):
            _write_frame(parsed.set_aside, folder / "set_aside.csv")
            out.console.print(
                f"[yellow]{len(parsed.set_aside):,} schedule rows set aside[/yellow] "
                f"(reasons in {folder / 'set_aside.csv'})"
            )
        if out_file is not None:
            _write_frame(frame, out_file)
            out.wrote("plan", out_file.resolve())
        counts = plan.counts()
        out.console.print(
            f"wave {plan.wave_id} (seed {plan.seed}): {len(plan.items):,} scheduled, all listed; "
            f"{counts.get('treatment', 0):,} to contact, {counts.get('control', 0):,} control, "
            f"{counts.get('open_intervention', 0):,} already open, {counts.get('none', 0):,} "
            f"no playbook, {len(unknown):,} unknown ids, {counts['too_soon']:,} too soon"
            + (" (dry run: nothing stored)" if dry_run else "")
        )
        out.wrote("plan", folder / "plan.csv")

    @app.command("at-risk")
    def at_risk(
        ctx: typer.Context,
        limit: Annotated[int, typer.Option(min=1, max=100_000, help="Rows.")] = 25,
        offset: Annotated[int, typer.Option(min=0, help="Skip this many first.")] = 0,
        sort: Annotated[
            str, typer.Option(help="churn_probability, detractor_probability or revenue_at_risk.")
        ] = "churn_probability",
        ascending: Annotated[bool, typer.Option(help="Lowest first.")] = False,
        min_tier: Annotated[str | None, typer.Option(help="low, medium or high.")] = None,
        segment: SegmentOption = None,
        owner: Annotated[str | None, typer.Option(help="Only this owner's customers.")] = None,
        status: Annotated[
            str | None,
            typer.Option(help="Only this intervention status ('none': no intervention)."),
        ] = None,
        top_k: Annotated[int, typer.Option(min=1, max=20, help="Drivers per target.")] = 3,
        newly_at_risk: Annotated[
            bool,
            typer.Option(help="Only customers whose tier rose since the last materialization."),
        ] = False,
        out_file: Annotated[
            Path | None, typer.Option("--out", help="Write CSV/Parquet instead of a table.")
        ] = None,
        alert: Annotated[
            bool,
            typer.Option(
                help="With --newly-at-risk: raise customer.newly_at_risk for each listed "
                "customer (to its owner, with why the score moved; once per customer and date)."
            ),
        ] = False,
    ) -> None:
        """The ranked at-risk list, with drivers, themes, owners, intervention status and why
        each score moved since the previous materialization."""
        from interventions.at_risk import AtRiskQuery, AtRiskQueryError, plain_row

        if alert and not newly_at_risk:
            raise ConfigError("--alert raises newly-at-risk alerts: add --newly-at-risk")
        settings = _settings(ctx)
        acting = _acting(settings)
        state = _state(settings)
        query = AtRiskQuery(
            sort,
            not ascending,
            min_tier,
            _segments(segment),
            owner,
            status,
            offset,
            limit,
            newly_at_risk,
        )
        try:
            page, total, _ = acting.at_risk_page(state, query, top_k)
        except AtRiskQueryError as exc:
            raise ConfigError(str(exc)) from None
        if alert:
            from interventions.alerts import newly_at_risk_alerts, raise_all
            from interventions.db import open_store_database

            rows = [
                plain_row({k: v for k, v in r.items() if k not in ("drivers", "change", "themes")})
                | {"drivers": r["drivers"], "change": r["change"]}
                for r in page.to_dict("records")
            ]
            db = open_store_database(settings)
            ids = raise_all(
                db,
                settings,
                "customer.newly_at_risk",
                newly_at_risk_alerts(rows, state.store.features_as_of),
            )
            db.dispose()
            out.console.print(f"{len(ids):,} customer.newly_at_risk alert(s) raised")
        page["change"] = [c["summary"] if c else "" for c in page["change"]]
        page["drivers"] = [
            "; ".join(d["description"] for d in drivers) for drivers in page["drivers"]
        ]
        page["themes"] = [",".join(t) for t in page["themes"]]
        page = page.drop(
            columns=[
                c
                for c in (
                    "p_detractor",
                    "p_passive",
                    "p_promoter",
                    "p_response",
                )
                if c in page
            ]
        )
        if out_file is not None:
            _write_frame(page, out_file)
            out.wrote(f"{len(page):,} of {total:,} at-risk customers", out_file.resolve())
            return
        shown = page[
            [
                "rank",
                "customer_id",
                "risk_tier",
                "churn_probability",
                "detractor_probability",
                "revenue_at_risk",
                "owner",
                "intervention_status",
                "churn_change",
                "change",
                "drivers",
            ]
        ]
        out.print_frame(
            shown.set_index("rank"), title=f"At risk: {len(page)} of {total:,}", digits=3
        )

    @app.command()
    def forecast(
        ctx: typer.Context,
        survey_date: Annotated[
            str | None, typer.Option(help="The wave of a stored plan with this survey date.")
        ] = None,
        schedule: Annotated[
            Path | None, typer.Option(help="Or the schedule file of the wave (customer_id, ...).")
        ] = None,
        surveys: Annotated[
            Path | None,
            typer.Option(
                help="Or contract tables with a `surveys` table (invitations sent): the wave is "
                "who was invited on --survey-date (default: the latest invitation day)."
            ),
        ] = None,
        segment: SegmentOption = None,
        alert: Annotated[
            bool, typer.Option(help="Raise segment.dropped for segments forecast to drop.")
        ] = True,
        plan_segments: Annotated[
            bool,
            typer.Option(
                help="Plan the segment playbook (segment_playbooks of the playbook file) of "
                "each segment forecast to drop; stored like other interventions."
            ),
        ] = False,
    ) -> None:
        """The NPS the next wave will report, and the base's, with intervals, per segment."""
        from interventions.schedule import ScheduleError, read_schedule, schedule_from_surveys
        from npsrisk.outputs import new_report_dir

        settings = _settings(ctx)
        acting = _acting(settings)
        state = _state(settings)
        when = _date(survey_date, "--survey-date")
        ids = None
        if schedule is not None and surveys is not None:
            raise ConfigError("say who the wave surveys once: --schedule or --surveys")
        if schedule is not None or surveys is not None:
            try:
                parsed = (
                    read_schedule(schedule)
                    if schedule is not None
                    else schedule_from_surveys(_surveys_table(surveys), when)
                )
            except ScheduleError as exc:
                raise ConfigError(str(exc)) from None
            ids = parsed.customer_ids
            when = when or min(d for _, d in parsed.rows)
        try:
            result = acting.forecast(state, ids, _segments(segment), when)
        except (ValueError, LookupError) as exc:
            raise ConfigError(str(exc)) from None
        body = result.to_dict()
        folder = new_report_dir(settings, "forecast")
        (folder / "forecast.json").write_text(json.dumps(body, indent=2, default=str))
        w, b, last = body["wave"], body["base"], body["last_measured"]
        out.console.print(
            f"wave of {w['customers']:,} (expected respondents "
            f"{w.get('expected_respondents') or 'n/a'}): NPS {w['nps']} [{w['low']}, {w['high']}]; "
            f"whole base {b['nps']} [{b['low']}, {b['high']}]; last measured {last['nps']} "
            f"({last['respondents']:,} answers)"
        )
        import pandas as pd

        rows = [
            {
                "segment": f"{s['column']}={s['value']}",
                "wave_nps": s["wave"]["nps"],
                "low": s["wave"]["low"],
                "high": s["wave"]["high"],
                "base_nps": s["base"]["nps"],
                "last_measured": s["last_measured"]["nps"],
            }
            for s in body["segments"]
        ]
        if rows:
            out.print_frame(pd.DataFrame(rows).set_index("segment"), title="By segment", digits=1)
        for p in body["pulling_down"][:5]:
            out.console.print(f"  pulling down: {p['column']}={p['value']} ({p['points']} points)")
        for t in body["themes_pulling_down"][:3]:
            out.console.print(f"  theme pulling down: {t['label']} ({t['points']} points)")
        plans = {}
        if plan_segments and body["dropped_segments"]:
            plans = acting.plan_segments(body["dropped_segments"], when)
            for key, plan in plans.items():
                out.console.print(
                    f"  {key}: {plan['playbook']} -> {plan['owner'] or 'unassigned'} "
                    + (
                        f"(planned {plan['intervention_id']})"
                        if plan["intervention_id"]
                        else "(already open)"
                    )
                )
        if alert and body["dropped_segments"]:
            from interventions.alerts import raise_all, segment_drop_alerts
            from interventions.db import open_store_database

            db = open_store_database(settings)
            ids = raise_all(
                db,
                settings,
                "segment.dropped",
                segment_drop_alerts(body["dropped_segments"], when, plans),
            )
            db.dispose()
            out.console.print(f"[yellow]{len(ids)} segment.dropped alert(s) raised[/yellow]")
        out.wrote("forecast", folder / "forecast.json")

    @app.command()
    def outcomes(
        ctx: typer.Context,
        data: Annotated[
            Path,
            typer.Argument(help="Contract tables with the later NPS answers and churn events."),
        ],
        wave: Annotated[str | None, typer.Option(help="Only this wave id.")] = None,
        alert: Annotated[
            bool, typer.Option(help="Route new detractor answers to their owners.")
        ] = True,
    ) -> None:
        """Join later answers and churn to treated and control customers; the outcome report."""
        import pandas as pd

        from features.loading import load_tables
        from features.validation import validate_tables
        from interventions.outcomes import join_outcomes, outcome_report, report_frame
        from npsrisk.outputs import new_report_dir

        settings = _settings(ctx)
        acting = _acting(settings)
        s = settings.interventions
        assignments = acting.store.assignments_frame(wave)
        if assignments.empty:
            raise ConfigError("no stored plans yet: run `npsrisk presurvey SCHEDULE` first")
        tables = validate_tables(load_tables(data, tables=["nps_responses", "churn", "tickets"]))
        answers = (
            tables["nps_responses"]
            if tables.has("nps_responses")
            else pd.DataFrame(columns=["customer_id", "responded_at", "score"])
        )
        churn = (
            tables["churn"]
            if tables.has("churn")
            else pd.DataFrame(columns=["customer_id", "churned_at"])
        )
        joined = join_outcomes(assignments, answers, churn, settings.training.horizon_days)
        report = report_frame(
            outcome_report(joined, s.bootstrap_samples, s.interval, settings.training.seed)
        )
        folder = new_report_dir(settings, "outcomes")
        _write_frame(joined, folder / "outcomes_by_customer.csv")
        _write_frame(report, folder / "outcome_report.csv")
        head = report[(report["group"] == "all")]
        out.print_frame(
            head.set_index("metric")[
                ["treated", "control", "difference", "low", "high", "n_treated", "n_control"]
            ],
            title=f"Treated vs control ({s.interval:.0%} bootstrap intervals)",
            digits=3,
        )
        conv = report[report["metric"] == "detractor_conversion"].set_index("group")
        out.print_frame(
            conv[["treated", "control", "difference", "low", "high", "n_treated", "n_control"]],
            title="Detractor conversion by playbook",
            digits=3,
        )
        if alert and s.detractor_alerts:
            from interventions.alerts import detractor_alerts, raise_all
            from interventions.db import open_store_database

            since = pd.to_datetime(assignments["planned_on"]).min()
            new = answers[answers["responded_at"] > since]
            owners = {**acting.owners().account_owner, **acting.store.owners_by_customer()}
            explained = _explained_or_none(settings, new["customer_id"].astype(str).unique())
            items = detractor_alerts(
                new,
                tables["tickets"] if tables.has("tickets") else None,
                owners.get,
                drivers={c: p.get("drivers") or [] for c, p in explained.items()},
                changes={c: p.get("change") for c, p in explained.items()},
            )
            db = open_store_database(settings)
            ids = raise_all(db, settings, "detractor.answered", items)
            db.dispose()
            out.console.print(
                f"{len(ids):,} detractor answers routed to their owners "
                "(repeats of earlier runs are not raised again)"
            )
        out.wrote("outcome report", folder / "outcome_report.csv")

    @app.command()
    def owners(
        ctx: typer.Context,
        data: Annotated[Path, typer.Argument(help="Contract tables (customers.owner).")],
    ) -> None:
        """Store each customer's owner from the customers table (routing only, never a feature)."""
        settings = _settings(ctx)
        n = _sync_owners(_acting(settings), data)
        out.console.print(f"{n:,} customer owners added or changed")

    @interventions_app.command("list")
    def interventions_list(
        ctx: typer.Context,
        status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
        owner: Annotated[str | None, typer.Option(help="Only this owner.")] = None,
        customer_id: Annotated[str | None, typer.Option(help="Only this customer.")] = None,
        playbook: Annotated[str | None, typer.Option(help="Only this playbook.")] = None,
        limit: Annotated[int, typer.Option(min=1, help="Rows.")] = 50,
    ) -> None:
        """Interventions with their status, owner and due date."""
        import pandas as pd

        rows, total = _acting(_settings(ctx)).store.list(
            status, owner, customer_id, playbook, None, limit, 0, history=False
        )
        frame = pd.DataFrame(rows)
        if frame.empty:
            out.console.print("no interventions match")
            return
        out.print_frame(
            frame[
                ["id", "customer_id", "playbook", "status", "owner", "due_date", "survey_date"]
            ].set_index("id"),
            title=f"Interventions: {len(frame)} of {total:,}",
        )

    @interventions_app.command("status")
    def interventions_status(
        ctx: typer.Context,
        intervention_id: Annotated[str, typer.Argument(help="The intervention id (iv-...).")],
        status: Annotated[
            str, typer.Argument(help="contacted, resolved, dismissed, snoozed, planned")
        ],
        actor: Annotated[str, typer.Option(help="Who made the change.")],
        note: Annotated[str | None, typer.Option(help="What happened / why.")] = None,
        snooze_until: Annotated[str | None, typer.Option(help="With snoozed: until when.")] = None,
    ) -> None:
        """Move one intervention along its life cycle (illegal moves are refused)."""
        from interventions.states import TransitionError
        from interventions.store import NotFoundError

        store = _acting(_settings(ctx)).store
        try:
            row = store.change_status(
                intervention_id, status, actor, note, _date(snooze_until, "--snooze-until")
            )
        except (TransitionError, NotFoundError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        out.console.print(f"{row['id']}: now {row['status']} (by {actor})")

    @interventions_app.command("reassign")
    def interventions_reassign(
        ctx: typer.Context,
        to_owner: Annotated[str, typer.Option("--to", help="The new owner.")],
        actor: Annotated[str, typer.Option(help="Who reassigns.")],
        from_owner: Annotated[
            str | None, typer.Option("--from", help="Every open one of this owner.")
        ] = None,
        ids: Annotated[
            list[str] | None, typer.Option("--id", help="Or these ids (repeat).")
        ] = None,
        note: Annotated[str | None, typer.Option(help="Why.")] = None,
    ) -> None:
        """Reassign interventions in bulk; every move is recorded with who and when."""
        store = _acting(_settings(ctx)).store
        try:
            n = store.reassign(to_owner, actor, ids, from_owner, note)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        out.console.print(f"{n:,} interventions moved to {to_owner}")


def register_review(app: typer.Typer) -> None:
    @app.command()
    def review(
        ctx: typer.Context,
        data: Annotated[Path, typer.Argument(help="Contract tables.")],
        weekly: Annotated[bool, typer.Option("--weekly", help="Last 7 days' detractors.")] = False,
        monthly: Annotated[bool, typer.Option("--monthly", help="Trend and top themes.")] = False,
        quarterly: Annotated[
            bool, typer.Option("--quarterly", help="NPS tied to retention and MRR.")
        ] = False,
        as_of: Annotated[
            str | None, typer.Option(help="Review date; default: the data's end.")
        ] = None,
    ) -> None:
        """The NPS programme's weekly, monthly or quarterly review (tables and CSV files)."""
        import pandas as pd

        from features.loading import load_tables
        from features.validation import validate_tables
        from interventions import review as r
        from npsrisk.outputs import new_report_dir
        from serving.state import NotReadyError, load_champion
        from text_analytics.signals import extract_customer_texts
        from training.snapshots import data_window

        if sum((weekly, monthly, quarterly)) != 1:
            raise ConfigError("choose one of --weekly, --monthly, --quarterly")
        settings = _settings(ctx)
        tables = validate_tables(load_tables(data))
        when = pd.Timestamp(_date(as_of, "--as-of")) if as_of else data_window(tables)[1]
        if not tables.has("nps_responses"):
            raise ConfigError(f"{data} has no nps_responses: there is nothing to review")
        responses = tables["nps_responses"]
        acting = _acting(settings)
        folder = new_report_dir(
            settings, f"review-{'weekly' if weekly else 'monthly' if monthly else 'quarterly'}"
        )
        if weekly or monthly:
            try:
                scorer = load_champion(settings).bundle.text
            except NotReadyError:
                scorer = None
            if scorer is None:
                raise ConfigError(
                    "the review codes themes with the champion's text model: "
                    "run `npsrisk train DATA` with text.features on"
                )
            messages = scorer.score(extract_customer_texts(tables.frames), "text")
            scored = scorer.score(responses.assign(comment=responses.get("comment")), "comment")
        if weekly:
            owners = acting.store.owners_by_customer()
            comments, themes = r.weekly_review(scored, messages, when, owners)
            _write_frame(comments, folder / "detractor_comments.csv")
            _write_frame(themes, folder / "repeating_themes.csv")
            unassigned = int((comments["follow_up"] == "unassigned").sum())
            out.console.print(
                f"{len(comments):,} detractor answers in the 7 days to {when.date()}, "
                f"{unassigned:,} without an assigned follow-up"
            )
            out.print_frame(comments.head(20).set_index("customer_id"), title="Detractor comments")
            out.print_frame(themes.set_index("theme"), title="Themes repeating 3+ times")
        elif monthly:
            trend, themes = r.monthly_review(
                scored, messages, tables["customers"], when, settings.interventions.segment_columns
            )
            _write_frame(trend, folder / "nps_trend.csv")
            _write_frame(themes, folder / "top_detractor_themes.csv")
            pivot = trend.pivot_table(index=["segment", "value"], columns="month", values="nps")
            out.print_frame(pivot, title="NPS by month and segment", digits=1)
            out.print_frame(themes.set_index("theme"), title="Top 3 detractor themes (30 days)")
        else:
            rows, _ = acting.store.list(limit=1_000_000, history=False)
            followed = {x["customer_id"] for x in rows if x["status"] in ("contacted", "resolved")}
            churn = (
                tables["churn"]
                if tables.has("churn")
                else pd.DataFrame(columns=["customer_id", "churned_at"])
            )
            s = settings.interventions
            table = r.quarterly_review(
                responses,
                churn,
                tables["customers"],
                when,
                followed,
                s.bootstrap_samples,
                s.interval,
                settings.training.seed,
            )
            _write_frame(table, folder / "nps_and_revenue.csv")
            out.print_frame(
                table.set_index("group"),
                title=f"Quarter to {when.date()}: retention by NPS category",
                digits=3,
            )
        out.wrote("review", folder)

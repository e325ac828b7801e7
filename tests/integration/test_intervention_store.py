"""The interventions store on SQLite and on a real PostgreSQL 15 server, same suite."""

from __future__ import annotations

import threading
import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from postgres import postgres_bindir, postgres_cluster

from interventions.owners import OwnerDirectory
from interventions.planning import ARM_CONTROL, ARM_OPEN, ARM_TREATMENT, ARM_UNKNOWN, plan_wave
from interventions.playbooks import load_playbooks
from interventions.states import TransitionError
from interventions.store import InterventionStore, NotFoundError

pytestmark = pytest.mark.integration

PLAYBOOKS = load_playbooks()
TODAY = date(2025, 7, 1)
SURVEY = date(2025, 7, 20)


@pytest.fixture(scope="session")
def pg_server():
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL server binaries not found: `pg_config --bindir` names no initdb")
    with postgres_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'npsrisk.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
        url = server.rsplit("/", 1)[0] + f"/{name}"
    from db import Database, current_revision, head_revision, upgrade_database

    database = Database(url)
    upgrade_database(database)  # the real migrations, not create_all
    assert current_revision(database) == head_revision() == "0002_interventions"
    yield database.engine
    database.dispose()


def prediction(cid: str, tier: str = "high", p_det: float = 0.7) -> dict:
    return {
        "customer_id": cid,
        "churn_probability": 0.5 if tier == "high" else 0.05,
        "nps_category": "detractor",
        "category_probabilities": {"detractor": p_det, "passive": 0.2, "promoter": 0.1},
        "risk_tier": tier,
        "drivers": [
            {
                "feature": "tickets_open",
                "contribution": 0.3,
                "target": "churn",
                "description": "4 open tickets",
            }
        ],
    }


def planner(ids, predictions, share=0.0, seed=1, owners=None):
    directory = OwnerDirectory(owners or {})

    def make(open_, held_out=frozenset()):
        return plan_wave(
            [(c, SURVEY) for c in ids],
            predictions,
            {},
            PLAYBOOKS,
            open_,
            directory.owner_of,
            planned_on=TODAY,
            control_share=share,
            seed=seed,
            lead_time_days=5,
            held_out=held_out,
        )

    return make


def test_plan_is_persisted_with_assignments_and_history(engine):
    emitted = []
    store = InterventionStore(
        engine, on_event=lambda conn, kind, data: emitted.append((kind, data))
    )
    ids = [f"C-{i:03d}" for i in range(40)]
    preds = {c: prediction(c) for c in ids}
    plan, created = store.plan_and_save(
        [*ids, "GHOST"],
        planner([*ids, "GHOST"], preds, share=0.25, owners={"C-000": "ana"}),
        "cli",
        "3",
        "2025-06-30",
    )
    arms = {i.customer_id: i.arm for i in plan.items}
    assert arms["GHOST"] == ARM_UNKNOWN
    treated = [c for c, a in arms.items() if a == ARM_TREATMENT]
    assert set(created) == set(treated) and len(treated) == 30
    assert sum(a == ARM_CONTROL for a in arms.values()) == 10
    frame = store.assignments_frame(plan.wave_id)
    assert len(frame) == 41  # every scheduled customer, control and unknown included
    assert set(frame["seed"]) == {1}
    assert [k for k, _ in emitted] == ["intervention.planned"] * 30
    rows, total = store.list(customer_id="C-000")
    if "C-000" in created:
        assert total == 1 and rows[0]["owner"] == "ana"
        assert rows[0]["history"][0]["to_status"] == "planned"
        assert rows[0]["history"][0]["actor"] == "plan:cli"
    waves = store.waves()
    assert waves[0]["wave_id"] == plan.wave_id and waves[0]["seed"] == 1


def test_dedup_across_plans_and_assignment_history(engine):
    store = InterventionStore(engine)
    ids = [f"C-{i:03d}" for i in range(10)]
    preds = {c: prediction(c) for c in ids}
    _, first = store.plan_and_save(ids, planner(ids, preds, seed=1), "api")
    plan2, second = store.plan_and_save(ids, planner(ids, preds, seed=2), "api")
    assert len(first) == 10 and second == {}
    assert all(
        i.arm == ARM_OPEN and i.open_intervention_id == first[i.customer_id] for i in plan2.items
    )
    assert store.list()[1] == 10
    history = store.history_of("C-001")
    assert [h["arm"] for h in history] == [ARM_TREATMENT, ARM_OPEN]
    assert history[0]["wave_id"] != history[1]["wave_id"]


def test_the_database_refuses_a_second_open_intervention(engine):
    from interventions.tables import interventions

    store = InterventionStore(engine)
    _, created = store.plan_and_save(["A"], planner(["A"], {"A": prediction("A")}), "api")
    row = store.get(created["A"])
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            interventions.insert().values(
                id="iv-dup",
                customer_id="A",
                playbook="x",
                action="x",
                priority="low",
                owner_role="r",
                status="planned",
                why=[],
                drivers=[],
                themes=[],
                too_soon=False,
                created_at=sa.func.now(),
                updated_at=sa.func.now(),
            )
        )
    assert row["status"] == "planned"


def test_concurrent_plans_open_one_intervention_per_customer(engine):
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs a server database")
    store = InterventionStore(engine)
    ids = [f"C-{i:03d}" for i in range(50)]
    preds = {c: prediction(c) for c in ids}
    results, errors = [], []

    def run(seed):
        try:
            results.append(store.plan_and_save(ids, planner(ids, preds, seed=seed), "api")[1])
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(len(r) for r in results) == 50
    assert store.list(limit=1000)[1] == 50


def test_status_life_cycle_records_who_when_and_rejects_illegal(engine):
    events = []
    store = InterventionStore(engine, on_event=lambda c, k, d: events.append((k, d)))
    _, created = store.plan_and_save(
        ["A", "B"], planner(["A", "B"], {c: prediction(c) for c in "AB"}), "api"
    )
    a = created["A"]
    with pytest.raises(TransitionError) as err:
        store.change_status(a, "resolved", "ana")
    assert err.value.allowed == ("contacted", "snoozed", "dismissed")
    moved = store.change_status(a, "contacted", "ana", "called, billing error found")
    assert moved["status"] == "contacted"
    store.change_status(
        a, "snoozed", "ana", "waiting for finance", TODAY + timedelta(days=3), today=TODAY
    )
    assert store.wake_snoozed(TODAY + timedelta(days=1)) == 0
    assert store.wake_snoozed(TODAY + timedelta(days=3)) == 1
    store.change_status(a, "contacted", "ana")
    done = store.change_status(a, "resolved", "ana", "credit note issued")
    assert [h["to_status"] for h in done["history"]] == [
        "planned",
        "contacted",
        "snoozed",
        "planned",
        "contacted",
        "resolved",
    ]
    assert done["history"][1]["actor"] == "ana" and done["history"][1]["at"]
    assert done["history"][3]["actor"] == "system"
    with pytest.raises(TransitionError):
        store.change_status(a, "contacted", "ana")
    with pytest.raises(NotFoundError):
        store.change_status("iv-nope", "contacted", "ana")
    kinds = [k for k, _ in events]
    assert kinds.count("intervention.status_changed") == 5
    assert events[-1][1]["previous_status"] == "contacted" and events[-1][1]["status"] == "resolved"
    # a resolved customer can be planned again
    _, again = store.plan_and_save(["A"], planner(["A"], {"A": prediction("A")}, seed=9), "api")
    assert "A" in again


def test_a_failing_event_hook_rolls_the_change_back(engine):
    def boom(conn, kind, data):
        raise RuntimeError("outbox down")

    store = InterventionStore(engine, on_event=boom)
    with pytest.raises(RuntimeError):
        store.plan_and_save(["A"], planner(["A"], {"A": prediction("A")}), "api")
    assert InterventionStore(engine).list()[1] == 0
    assert InterventionStore(engine).waves() == []


def test_filters_and_bulk_reassignment(engine):
    store = InterventionStore(engine)
    ids = [f"C-{i:03d}" for i in range(6)]
    owners = {c: ("ana" if i < 4 else "bo") for i, c in enumerate(ids)}
    _, created = store.plan_and_save(
        ids, planner(ids, {c: prediction(c) for c in ids}, owners=owners), "api"
    )
    assert store.list(owner="ana")[1] == 4
    assert store.list(status="planned", playbook="support_escalation")[1] == 6
    store.change_status(created["C-000"], "dismissed", "ana", "duplicate account")
    assert store.reassign("cy", "lead", from_owner="ana", note="ana on leave") == 3  # open only
    assert store.list(owner="cy")[1] == 3 and store.list(owner="ana")[1] == 1
    one = store.get(created["C-001"])
    assert one["history"][-1] == {
        **one["history"][-1],
        "kind": "owner",
        "from_owner": "ana",
        "to_owner": "cy",
        "actor": "lead",
    }
    assert store.reassign("bo", "lead", intervention_ids=[created["C-001"]]) == 1
    assert store.owners_by_customer()["C-001"] == "bo"
    with pytest.raises(ValueError):
        store.reassign("bo", "lead")
    page, total = store.list(limit=2, offset=1)
    assert total == 6 and len(page) == 2
    from datetime import UTC, datetime

    assert store.list(since=datetime.now(UTC) + timedelta(hours=1))[1] == 0
    assert store.statuses_by_customer()["C-000"] == "dismissed"


def test_account_owners_upsert(engine):
    store = InterventionStore(engine)
    assert store.set_account_owners({"A": "ana", "B": "bo"}) == 2
    assert store.set_account_owners({"A": "ana", "B": "cy"}) == 1
    assert store.account_owners() == {"A": "ana", "B": "cy"}


def test_events_join_the_shared_outbox_in_the_same_transaction(engine, tmp_path):
    from db.models import AlertRecord
    from interventions.alerts import outbox_hook
    from npsrisk.settings import load_settings

    settings = load_settings(
        home=tmp_path / "home",
        alerts={"console": False, "file": True, "webhooks": [{"url": "http://127.0.0.1:9/h"}]},
    )
    store = InterventionStore(engine, on_event=outbox_hook(settings))
    _, created = store.plan_and_save(
        ["A", "B"], planner(["A", "B"], {c: prediction(c) for c in "AB"}), "api"
    )
    store.change_status(created["A"], "contacted", "ana", "called")
    with pytest.raises(TransitionError):
        store.change_status(created["A"], "planned", "ana")  # refused: no event either
    with engine.connect() as conn:
        rows = conn.execute(sa.select(AlertRecord.type, AlertRecord.body)).all()
        deliveries = conn.execute(sa.text("SELECT channel FROM alert_deliveries")).scalars().all()
    assert sorted(t for t, _ in rows) == [
        "intervention.planned",
        "intervention.planned",
        "intervention.status_changed",
    ]
    assert sorted(deliveries) == ["file", "file", "file", "webhook", "webhook", "webhook"]
    import json

    body = json.loads(next(b for t, b in rows if t == "intervention.status_changed"))
    assert body["data"]["previous_status"] == "planned" and body["data"]["actor"] == "ana"


def test_replanning_a_wave_keeps_its_control_group(engine):
    store = InterventionStore(engine)
    ids = [f"C-{i:03d}" for i in range(40)]
    preds = {c: prediction(c) for c in ids}
    first, _ = store.plan_and_save(ids, planner(ids, preds, share=0.25, seed=1), "api")
    control = {i.customer_id for i in first.items if i.arm == ARM_CONTROL}
    second, created = store.plan_and_save(ids, planner(ids, preds, share=0.25, seed=2), "api")
    assert control and {i.customer_id for i in second.items if i.arm == ARM_CONTROL} == control
    assert created == {}  # everyone else already has an open intervention


def test_segment_playbook_plans_are_stored_once_with_a_life_cycle(engine, tmp_path):
    from db.models import AlertRecord
    from interventions.alerts import outbox_hook
    from interventions.planning import plan_segments
    from interventions.playbooks import load_segment_playbooks
    from npsrisk.settings import load_settings

    settings = load_settings(home=tmp_path / "home", alerts={"console": False, "file": True})
    store = InterventionStore(engine, on_event=outbox_hook(settings))
    drop = {
        "column": "plan_tier",
        "value": "pro",
        "forecast_nps": 12.0,
        "last_measured_nps": 20.0,
        "drop": 8.0,
    }
    plans = plan_segments(
        [drop], load_segment_playbooks(), lambda *_: None, TODAY, SURVEY, lead_time_days=5
    )
    created = store.save_segment_plans(plans, "cli")
    assert list(created) == ["segment:plan_tier=pro"]
    # the same drop forecast again: the open segment intervention is not planned twice
    assert store.save_segment_plans(plans, "cli") == {}
    rows, total = store.list(None, None, "segment:plan_tier=pro", None, None, 10, 0)
    assert total == 1 and rows[0]["playbook"] == "segment_review"
    assert rows[0]["survey_date"] == SURVEY.isoformat() and "down 8.0 points" in rows[0]["why"][0]
    iv = created["segment:plan_tier=pro"]
    store.change_status(iv, "contacted", "lee", "briefed the owners")
    assert store.change_status(iv, "resolved", "lee", "done")["status"] == "resolved"
    assert set(store.save_segment_plans(plans, "cli")) == {"segment:plan_tier=pro"}  # reopens
    with engine.connect() as conn:
        kinds = conn.execute(sa.select(AlertRecord.type)).scalars().all()
    assert sorted(kinds) == [
        "intervention.planned",
        "intervention.planned",
        "intervention.status_changed",
        "intervention.status_changed",
    ]

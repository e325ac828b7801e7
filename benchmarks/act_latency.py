"""Latency of the acting endpoints over real HTTP, against /predict for the same customers.

    uv run python benchmarks/act_latency.py                      # builds its own home
    uv run python benchmarks/act_latency.py --home /tmp/bench    # reuse a built home

Measures, sequentially over one keep-alive connection, after a warm-up:

* baseline ``POST /predict`` with drivers for 1 and for 1,000 customers;
* ``POST /presurvey`` for 1 and 1,000 customers, stored (each request plans a new wave and
  writes its interventions, assignments and outbox events) and ``dry_run`` (plan only);
* ``GET /at_risk`` returning 1 and 1,000 customers (the whole base ranked, the page
  explained);
* then, with an earlier materialization (30 days before) kept beside the current store,
  ``POST /predict`` and ``GET /at_risk`` again: each score also says why it moved
  (``change``, SHAP of both dates), the cost of which is the ratio to the first baseline;

and prints each as p50/p90/max and as a ratio to the /predict baseline of the same size
(measured in the same run, without an earlier store).
The server is stopped at the end, also on error.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_latency import build_home, repeat, summary_ms

from serving.process import ServiceProcess

API_KEY = "bench-key-0123456789"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=None, help="folder holding home/ (reused)")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per size")
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="npsrisk-act-latency-"))
    root = args.home.resolve() if args.home else scratch
    home = root / "home"
    server = None
    try:
        from db import Database, upgrade_database
        from features.store import FeatureStore, current_store_path
        from npsrisk.settings import load_settings

        if current_store_path(home) is None:
            print(f"building a home in {root}")
            build_home(root, args.customers, args.seed)
        settings = load_settings(home=home)
        database = Database.from_settings(settings)
        upgrade_database(database)  # as `npsrisk serve` does before its workers
        database.dispose()
        current = FeatureStore.open(home)
        ids = list(current.frame["customer_id"])
        earlier = _earlier_store(root, settings, current)
        rng = random.Random(args.seed)
        server = ServiceProcess(
            home,
            scratch / "serve.log",
            {"NPSRISK_API_KEYS": API_KEY, "NPSRISK_ALERTS__CONSOLE": "false"},
        )
        server.wait_until_up()
        survey = (datetime.now(UTC).date() + timedelta(days=21)).isoformat()
        results: dict[str, dict[str, float]] = {}
        headers = {"Authorization": f"Bearer {API_KEY}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=300) as client:

            def call(method: str, path: str, **kw) -> None:
                r = client.request(method, path, **kw)
                if r.status_code != 200:
                    raise RuntimeError(f"{path} answered {r.status_code}: {r.text[:300]}")

            for size in (1, 1000):

                def sample(_i: int, size=size) -> list[str]:
                    return rng.sample(ids, size)

                results[f"/predict {size} (baseline)"] = summary_ms(
                    repeat(
                        lambda i, size=size: call(
                            "POST",
                            "/predict",
                            json={"customer_ids": sample(i), "explain": True, "top_k": 5},
                        ),
                        args.requests,
                        args.warmup,
                    )
                )
                results[f"/presurvey {size} dry run"] = summary_ms(
                    repeat(
                        lambda i, size=size: call(
                            "POST",
                            "/presurvey",
                            json={
                                "customer_ids": sample(i),
                                "survey_date": survey,
                                "dry_run": True,
                            },
                        ),
                        args.requests,
                        args.warmup,
                    )
                )
                results[f"/presurvey {size} stored"] = summary_ms(
                    repeat(
                        lambda i, size=size: call(
                            "POST",
                            "/presurvey",
                            json={"customer_ids": sample(i), "survey_date": survey},
                        ),
                        args.requests,
                        args.warmup,
                    )
                )
                results[f"/at_risk limit={size}"] = summary_ms(
                    repeat(
                        lambda i, size=size: call("GET", "/at_risk", params={"limit": size}),
                        args.requests,
                        args.warmup,
                    )
                )
            # The earlier store joins the current one's folder (CURRENT untouched): from the
            # next request on, /predict and /at_risk explain each score's change too.
            kept = home / "feature_store" / earlier.name
            shutil.copy(earlier, kept)
            try:
                for size in (1, 1000):

                    def sample(_i: int, size=size) -> list[str]:
                        return rng.sample(ids, size)

                    results[f"/predict {size} with change"] = summary_ms(
                        repeat(
                            lambda i, size=size: call(
                                "POST",
                                "/predict",
                                json={"customer_ids": sample(i), "explain": True, "top_k": 5},
                            ),
                            args.requests,
                            args.warmup,
                        )
                    )
                    results[f"/at_risk limit={size} with change"] = summary_ms(
                        repeat(
                            lambda i, size=size: call("GET", "/at_risk", params={"limit": size}),
                            args.requests,
                            args.warmup,
                        )
                    )
            finally:
                kept.unlink(missing_ok=True)  # a reused home starts without it again
        print(f"{len(ids):,} customers in the store; {args.requests} timed requests each")
        print(f"{'request':<34}{'p50 ms':>10}{'p90 ms':>10}{'max ms':>10}{'x /predict':>12}")
        for name, s in results.items():
            size = name.split()[1].split("=")[-1]
            base = results[f"/predict {size} (baseline)"]["p50"]
            print(
                f"{name:<34}{s['p50']:>10.1f}{s['p90']:>10.1f}{s['max']:>10.1f}"
                f"{s['p50'] / base:>12.2f}"
            )
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _earlier_store(root: Path, settings, current) -> Path:
    """A store of the same data 30 days before the current one (built once per home, in a
    home of its own so the benchmark's CURRENT is never repointed)."""
    import pandas as pd

    from features.store import current_store_path, materialize_features
    from serving.state import load_champion

    other = root / "earlier_home"
    path = current_store_path(other)
    if path is None:
        as_of = pd.Timestamp(current.features_as_of) - pd.Timedelta(days=30)
        champion = load_champion(settings)
        info = materialize_features(
            root / "data", champion.bundle, other, as_of, champion.card.version
        )
        print(f"  materialized {info.rows:,} customers as of {as_of.date()} (the earlier store)")
        path = info.path
    return path


if __name__ == "__main__":
    raise SystemExit(main())

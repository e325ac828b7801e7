"""Latency and throughput of the prediction service over real HTTP, against the model floor.

    uv run python benchmarks/serving_latency.py
    uv run python benchmarks/serving_latency.py --customers 5000 --requests 2000 --concurrency 8
    uv run python benchmarks/serving_latency.py --home /tmp/bench-home   # reuse a built home

The script builds its own home (demo data, a champion trained with default settings, a
materialized feature store at the data's last date), starts ``bentoml serve`` on 127.0.0.1 and
measures, over a keep-alive connection on loopback:

* sequential single-customer ``/predict`` with ``explain: true`` (a random known customer per
  request), p50/p90/p99/max after a warm-up;
* the bare peer side by side: a bare Starlette app (uvicorn's defaults, one process) serving
  the same ``ServingState`` with the same ``predict_ids`` and no auth, no validation beyond
  ``json.loads``, no inference log; both get the same ids in ``--rounds`` alternating blocks
  and the script prints the service's p50 and p99 over the peer's (goal: <= 1.3x);
* throughput with ``--concurrency`` clients (threads, one keep-alive connection each), and
  p50/p99 with ``--shed-clients`` (32) clients against the default shedding limit;

and, in this process on the same champion and store, the layers one request goes through:

* floor: LightGBM's own work for one row: ``pred_contrib`` of the churn booster and of the NPS
  regressor plus the NPS classifier's ``predict`` (``num_threads=1``), which is all the model
  work ``score(explain=True)`` does (it derives churn probability and expected NPS from the
  contribution sums); the brief's wider floor that also adds a plain ``predict`` of both
  boosters is shown too;
* ``bundle.score(X, explain=True, threads=1)``: the floor plus calibration and clipping;
* ``serving.predictions.predict_rows``: plus drivers (top-k, values, descriptions);
* ``ServingState.predict_ids`` + JSON: what the ``/predict`` handler does, minus HTTP.

Goals (the issue): p50 <= 5 ms, p99 <= 15 ms for a single customer with drivers.
The server is stopped at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from serving.process import ServiceProcess

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-key-0123456789"
GOAL_P50_MS, GOAL_P99_MS = 5.0, 15.0
GOAL_RATIO = 1.3  # the service's p50 and p99 against the bare peer's (issue 9)


# --- the home: demo data, a champion, a materialized store ---------------------------------


def build_home(root: Path, customers: int, seed: int) -> None:
    """Demo data, a champion trained with default settings, and a materialized store."""
    from demo.generator import DemoConfig, find_ground_truth, make_demo
    from features.store import materialize_features
    from npsrisk.settings import load_settings
    from serving.state import load_champion
    from training.pipeline import train

    data = root / "data"
    clock = time.perf_counter()
    make_demo(DemoConfig(customers=customers, seed=seed), data)
    print(
        f"  demo data: {customers:,} customers, seed {seed} ({time.perf_counter() - clock:.0f} s)"
    )
    settings = load_settings(home=root / "home")
    clock = time.perf_counter()
    result = train(data, settings, truth_path=find_ground_truth(data))
    print(
        f"  trained model v{result.model_version} with default settings "
        f"({time.perf_counter() - clock:.0f} s)"
    )
    champion = load_champion(settings)
    info = materialize_features(
        data, champion.bundle, settings.home_path, model_version=champion.card.version
    )
    print(f"  materialized {info.rows:,} customers as of {info.features_as_of.date()}")


# --- the server ------------------------------------------------------------------------------


def worker_processes(server: ServiceProcess):
    """psutil handles of the arbiter and its workers (None without psutil)."""
    try:
        import psutil
    except ImportError:
        return None
    parent = psutil.Process(server.process.pid)
    return [parent, *parent.children(recursive=True)]


# --- the bare peer: the same ServingState behind a bare Starlette app --------------------------


def bare_peer_app(home: Path):
    """Starlette, one sync route, the same ``ServingState`` and ``predict_ids`` as the service:
    no auth, no validation beyond ``json.loads``, no inference log, no BentoML."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from npsrisk.settings import load_settings
    from serving.state import ServingState, load_champion, load_store

    settings = load_settings(home=home)
    state = ServingState.build(load_champion(settings), load_store(settings))
    tiers = settings.serving.risk_tiers

    async def predict(request: Request) -> Response:
        body = json.loads(await request.body())
        predictions, unknown, _log = await asyncio.to_thread(
            state.predict_ids,
            body["customer_ids"],
            body.get("explain", True),
            body.get("top_k", 5),
            tiers,
        )
        payload = {
            "model": state.card,
            "features_as_of": state.store.features_as_of,
            "predictions": predictions,
            "unknown_customer_ids": unknown,
        }
        return Response(json.dumps(payload), media_type="application/json")

    async def healthz(_: Request) -> Response:
        return Response("ok")

    return Starlette(
        routes=[Route("/predict", predict, methods=["POST"]), Route("/healthz", healthz)]
    )


def serve_bare_peer(home: Path, port: int) -> None:
    import gc

    import uvicorn

    app = bare_peer_app(home)
    gc.collect()
    gc.freeze()  # as the service does after loading
    # uvicorn's defaults, as BentoML's worker runs it (uvloop and httptools when installed).
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


class BarePeer:
    def __init__(self, home: Path, log_path: Path):
        import subprocess

        from serving.process import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("w")
        self.log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-bare-peer", str(home), "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def wait_until_up(self, timeout: float = 300) -> None:
        from serving.process import wait_for_ok

        wait_for_ok(self.url + "/healthz", self.process, timeout, self.log_path.read_text)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self._log.close()


# --- measuring -------------------------------------------------------------------------------


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "n": len(ms),
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
    }


def repeat(step: Callable[[int], object], repeats: int, warmup: int) -> list[float]:
    """Wall seconds of ``step(i)`` for ``repeats`` calls after ``warmup`` untimed ones."""
    for i in range(warmup):
        step(i)
    times = []
    clock = time.perf_counter
    for i in range(repeats):
        start = clock()
        step(i)
        times.append(clock() - start)
    return times


def predict_body(customer_id: str, explain: bool = True) -> bytes:
    return json.dumps({"customer_ids": [customer_id], "explain": explain, "top_k": 5}).encode()


def sequential_http(
    url: str, ids: list[str], requests: int, warmup: int, explain: bool = True
) -> list[float]:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:

        def one(i: int) -> None:
            cid = ids[i % len(ids)]
            r = client.post("/predict", content=predict_body(cid, explain))
            if r.status_code != 200:
                raise RuntimeError(f"/predict answered {r.status_code}: {r.text[:300]}")
            body = r.json()
            if [p["customer_id"] for p in body["predictions"]] != [cid]:
                raise RuntimeError(f"unexpected predictions for {cid}: {r.text[:300]}")
            if explain and not body["predictions"][0].get("drivers"):
                raise RuntimeError(f"no drivers for {cid}: {r.text[:300]}")

        return repeat(one, requests, warmup)


def sequential_get(url: str, path: str, requests: int, warmup: int) -> list[float]:
    with httpx.Client(base_url=url, timeout=30) as client:

        def one(_: int) -> None:
            if client.get(path).status_code != 200:
                raise RuntimeError(f"{path} did not answer 200")

        return repeat(one, requests, warmup)


def concurrent_http(
    url: str, ids: list[str], clients: int, seconds: float, seed: int
) -> tuple[int, dict[str | int, int], list[float], float]:
    """Requests done, statuses, per-request latencies and the wall time of the window."""
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    stop = threading.Event()
    start_gate = threading.Barrier(clients + 1)
    statuses: list[dict] = [{} for _ in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]

    def run(k: int) -> None:
        rng = random.Random(seed + k)
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            for _ in range(20):  # open the connection and warm this client up
                client.post("/predict", content=predict_body(rng.choice(ids)))
            start_gate.wait()
            clock = time.perf_counter
            while not stop.is_set():
                body = predict_body(rng.choice(ids))
                t0 = clock()
                try:
                    r = client.post("/predict", content=body)
                    key: str | int = r.status_code
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                latencies[k].append(clock() - t0)
                statuses[k][key] = statuses[k].get(key, 0) + 1

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    merged: dict[str | int, int] = {}
    for s in statuses:
        for k, v in s.items():
            merged[k] = merged.get(k, 0) + v
    flat = [x for lat in latencies for x in lat]
    return sum(merged.values()), merged, flat, wall


def cpu_seconds(processes) -> float:
    total = 0.0
    for p in processes or []:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:  # a process that went away
            pass
    return total


# --- in-process layers ------------------------------------------------------------------------


def in_process(home: Path, ids: list[str], repeats: int) -> dict[str, dict[str, float]]:
    """p50s of the floor and of each layer above it, for one random known customer per call."""
    from npsrisk.settings import load_settings
    from serving.predictions import predict_rows
    from serving.service import _json
    from serving.state import ServingState, load_champion, load_store

    settings = load_settings(home=home)
    tiers = settings.serving.risk_tiers
    champion = load_champion(settings)
    store = load_store(settings)
    state = ServingState.build(champion, store)
    bundle = champion.bundle
    features = bundle.features
    rows = [store.index[c] for c in ids]
    # One encoded single-row matrix per customer, as /predict_features would encode it.
    records = [{f: store.value(r, f) for f in features} for r in rows]
    matrices = [bundle.encoder.transform_records([rec]) for rec in records]
    for x, r in zip(matrices[:50], rows[:50], strict=True):  # same encoding as the store
        assert np.array_equal(x[0], state.X[r], equal_nan=True)
    n = len(matrices)
    churn, nps = bundle.churn, bundle.nps
    warm = min(200, repeats)
    out: dict[str, dict[str, float]] = {}

    def floor(i: int) -> None:  # exactly the model calls of score(explain=True)
        x = matrices[i % n]
        for head in (churn, nps):
            if head is not None:
                head.contributions(x, num_threads=1)

    def floor_wide(i: int) -> None:  # plus a plain raw-score pass per head
        x = matrices[i % n]
        for head in (churn, nps):
            if head is not None:
                head.raw(x, num_threads=1)
                head.contributions(x, num_threads=1)

    def score(i: int) -> None:
        bundle.score(matrices[i % n], explain=True, threads=1)

    def assemble(i: int) -> None:
        row = rows[i % n]
        predict_rows(
            bundle,
            matrices[i % n],
            [ids[i % n]],
            lambda _r, f: store.value(row, f),
            True,
            5,
            tiers,
            threads=1,
        )

    def handler(i: int) -> None:  # the body of /predict without HTTP and the log write
        predictions, unknown, _log = state.predict_ids([ids[i % n]], True, 5, tiers)
        _json(
            200,
            {
                "model": state.card,
                "features_as_of": store.features_as_of,
                "predictions": predictions,
                "unknown_customer_ids": unknown,
            },
        )

    builds = [state.predict_ids([cid], True, 5, tiers)[2] for cid in ids]

    def log_record(i: int) -> None:  # what the inference-log thread does per request
        for record in builds[i % n]():
            json.dumps(record, separators=(",", ":"), default=str)

    parts: dict[str, Callable[[int], None]] = {}
    for name, head in (("churn", churn), ("nps", nps)):
        if head is not None:
            parts[f"{name} raw score"] = lambda i, h=head: h.raw(matrices[i % n], num_threads=1)
            parts[f"{name} contributions"] = lambda i, h=head: h.contributions(
                matrices[i % n], num_threads=1
            )
    for name, step in parts.items():
        out[f"  {name}"] = summary_ms(repeat(step, repeats, warm))
    out["floor: contributions of both heads"] = summary_ms(repeat(floor, repeats, warm))
    out["floor, wide: + plain raw score x2"] = summary_ms(repeat(floor_wide, repeats, warm))
    out["bundle.score(explain=True, threads=1)"] = summary_ms(repeat(score, repeats, warm))
    out["predict_rows (score + drivers)"] = summary_ms(repeat(assemble, repeats, warm))
    out["predict_ids + JSON (handler body)"] = summary_ms(repeat(handler, repeats, warm))
    out["inference-log record (off path)"] = summary_ms(repeat(log_record, repeats, warm))
    trees = {}
    for name, head in (("churn", churn), ("nps", nps)):
        parts = [] if head is None else getattr(head.scorer, "parts", [head.scorer])
        trees[name] = sum(p.booster.num_trees() for p in parts if hasattr(p, "booster"))
    out["_meta"] = {"trees": trees, "features": len(features)}  # type: ignore[assignment]
    return out


# --- main -------------------------------------------------------------------------------------


def row(name: str, s: dict[str, float], floor_p50: float | None) -> str:
    ratio = "" if not floor_p50 else f"{s['p50'] / floor_p50:>8.1f}x"
    return (
        f"{name:<42} {s['n']:>6} {s['p50']:>8.3f} {s['p90']:>8.3f} {s['p99']:>8.3f} "
        f"{s['max']:>8.3f} {ratio}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--requests", type=int, default=2000, help="sequential /predict calls")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="throughput window")
    parser.add_argument("--repeats", type=int, default=5000, help="in-process repeats")
    parser.add_argument(
        "--home", type=Path, default=None, help="reuse (or build into) this home; kept afterwards"
    )
    parser.add_argument("--workers", type=int, default=None, help="NPSRISK_SERVING__WORKERS")
    parser.add_argument("--threads", type=int, default=None, help="NPSRISK_SERVING__THREADS")
    parser.add_argument(
        "--no-inference-log",
        action="store_true",
        help="serve with serving.inference_log=false (default: the production default, on)",
    )
    parser.add_argument(
        "--shed-clients", type=int, default=32, help="clients of the overload run (shedding on)"
    )
    parser.add_argument("--rounds", type=int, default=4, help="service/peer alternations")
    parser.add_argument("--serve-bare-peer", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare_peer is not None:
        serve_bare_peer(args.serve_bare_peer, args.port)
        return 0
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be positive")

    scratch = Path(tempfile.mkdtemp(prefix="npsrisk-latency-"))
    root = args.home.resolve() if args.home else scratch
    home = root / "home"
    server: ServiceProcess | None = None
    try:
        from features.store import current_store_path

        print(
            f"npsrisk serving latency benchmark  (python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f})"
        )
        if current_store_path(home) is None:
            print(f"building a home in {root}")
            build_home(root, args.customers, args.seed)
        else:
            print(f"reusing the home in {root}")
        from features.store import FeatureStore

        store_ids = list(FeatureStore.open(home).frame["customer_id"])
        rng = random.Random(args.seed)
        ids = [rng.choice(store_ids) for _ in range(args.requests + args.warmup)]
        ids = ids[args.warmup :] + ids[: args.warmup]  # warm-up ids come after the timed ones

        from npsrisk.settings import load_settings

        extra = {"NPSRISK_SERVING__INFERENCE_LOG": "false"} if args.no_inference_log else {}
        if args.workers:
            extra["NPSRISK_SERVING__WORKERS"] = str(args.workers)
        if args.threads:
            extra["NPSRISK_SERVING__THREADS"] = str(args.threads)
        served = load_settings(home=home).serving
        workers, threads = args.workers or served.worker_count, args.threads or served.threads
        server = ServiceProcess(home, scratch / "serve.log", {"NPSRISK_API_KEYS": API_KEY, **extra})
        clock = time.perf_counter()
        server.wait_until_up()
        print(
            f"service ready on {server.url} in {time.perf_counter() - clock:.1f} s "
            f"(workers {workers}, threads {threads}, "
            f"inference log {'off' if args.no_inference_log else 'on'})"
        )

        http: dict[str, dict[str, float]] = {}
        livez = sequential_get(server.url, "/livez", min(args.requests, 1000), args.warmup)
        http["HTTP GET /livez (no model, no auth)"] = summary_ms(livez)
        plain = sequential_http(server.url, ids, max(args.requests // 4, 100), 50, explain=False)
        http["HTTP /predict 1 id, explain=false"] = summary_ms(plain)
        peer = BarePeer(home, scratch / "peer.log")
        try:
            peer.wait_until_up()
            # Alternate blocks of the same ids, so a change in the machine's load hits both.
            seq, bare = [], []
            block = max(args.requests // args.rounds, 1)
            sequential_http(peer.url, ids, 1, args.warmup)
            for r in range(args.rounds):
                part = ids[r * block :] + ids[: r * block]
                seq += sequential_http(server.url, part, block, 20)
                bare += sequential_http(peer.url, part, block, 20)
        finally:
            peer.stop()
        http["HTTP /predict 1 id, explain (sequential)"] = summary_ms(seq)
        http["bare Starlette peer, same ServingState"] = summary_ms(bare)
        shed_done, shed_statuses, shed_lat, shed_wall = concurrent_http(
            server.url, store_ids, args.shed_clients, min(args.seconds, 10.0), args.seed + 1
        )
        http[f"HTTP /predict under {args.shed_clients} clients (shedding on)"] = summary_ms(
            shed_lat
        )

        procs = worker_processes(server)
        cpu0, client_cpu0 = cpu_seconds(procs), time.process_time()
        done, statuses, lat, wall = concurrent_http(
            server.url, store_ids, args.concurrency, args.seconds, args.seed
        )
        server_cpu = cpu_seconds(procs) - cpu0
        client_cpu = time.process_time() - client_cpu0
        http[f"HTTP /predict under {args.concurrency} clients"] = summary_ms(lat)
        server.stop()
        server_log_tail = server.log_path.read_text()[-2000:]
        server = None

        print(f"in-process layers ({args.repeats} repeats each, random known customers)")
        layers = in_process(home, ids, args.repeats)
        meta = layers.pop("_meta")
        floor_p50 = layers["floor: contributions of both heads"]["p50"]

        print()
        print(f"model: {meta['features']} features, trees {meta['trees']}")
        header = (
            f"{'stage (ms)':<42} {'n':>6} {'p50':>8} {'p90':>8} {'p99':>8} "
            f"{'max':>8} {'p50/floor':>9}"
        )
        print(header)
        print("-" * len(header))
        for name, s in layers.items():
            print(row(name, s, None if name.startswith("  ") else floor_p50))
        for name, s in http.items():
            print(row(name, s, floor_p50))
        print()
        p = http["HTTP /predict 1 id, explain (sequential)"]
        handler = layers["predict_ids + JSON (handler body)"]["p50"]
        print("where one sequential request's p50 goes:")
        print(f"  model (floor)                         {floor_p50:7.3f} ms")
        assembly = handler - floor_p50
        print(f"  our code (score, drivers, JSON)       {assembly:7.3f} ms")
        print(f"  HTTP + BentoML + middlewares + client {p['p50'] - handler:7.3f} ms")
        print(
            f"ratio p50_http / p50_floor = {p['p50'] / floor_p50:.1f}x; "
            f"p50_http / p50_handler = {p['p50'] / handler:.2f}x"
        )
        b = http["bare Starlette peer, same ServingState"]
        r50, r99 = p["p50"] / b["p50"], p["p99"] / b["p99"]
        print(
            f"service / bare peer (auth, validation, inference log "
            f"{'off' if args.no_inference_log else 'on'}; {len(seq)} requests each, "
            f"{args.rounds} alternating rounds): p50 {p['p50']:.3f} / {b['p50']:.3f} ms = "
            f"{r50:.2f}x, p99 {p['p99']:.3f} / {b['p99']:.3f} ms = {r99:.2f}x; goal <= "
            f"{GOAL_RATIO:g}x: {'MET' if max(r50, r99) <= GOAL_RATIO else 'MISSED'}"
        )
        s32 = http[f"HTTP /predict under {args.shed_clients} clients (shedding on)"]
        print(
            f"{args.shed_clients} clients with shedding on, {shed_wall:.1f} s: p50 "
            f"{s32['p50']:.2f} ms, p99 {s32['p99']:.2f} ms, {shed_done / shed_wall:,.0f} "
            f"answers/s; statuses {dict(sorted(shed_statuses.items(), key=str))}"
        )
        ok50, ok99 = p["p50"] <= GOAL_P50_MS, p["p99"] <= GOAL_P99_MS
        slow = np.asarray(seq) * 1000
        worst = np.argsort(slow)[::-1][:5]
        print(
            f"sequential requests over {GOAL_P99_MS:g} ms: {(slow > GOAL_P99_MS).sum()} of "
            f"{len(slow)}; the worst: " + ", ".join(f"#{i} {slow[i]:.1f} ms" for i in sorted(worst))
        )
        print(
            f"goal p50 <= {GOAL_P50_MS:g} ms: {'MET' if ok50 else 'MISSED'} ({p['p50']:.2f} ms); "
            f"goal p99 <= {GOAL_P99_MS:g} ms: {'MET' if ok99 else 'MISSED'} ({p['p99']:.2f} ms)"
        )
        print()
        print(
            f"throughput, {args.concurrency} clients (threads in this process, one keep-alive "
            f"connection each) for {wall:.1f} s: {done / wall:,.0f} requests/s; statuses "
            f"{dict(sorted(statuses.items(), key=str))}"
        )
        if procs is not None:
            print(
                f"  server CPU: {server_cpu:.1f} s over the window = "
                f"{1000 * server_cpu / max(done, 1):.2f} ms CPU per request "
                f"({server_cpu / wall:.2f} of {os.cpu_count()} cores); the clients used "
                f"{client_cpu:.1f} s = {client_cpu / wall:.2f} cores on the same machine"
            )
        if set(statuses) != {200}:
            print("  non-200 answers; server log tail:\n" + server_log_tail)
        print(f"load average now {os.getloadavg()[0]:.2f}")
        return 0 if set(statuses) == {200} else 1
    finally:
        if server is not None:
            server.stop()
        # The scratch folder is the whole home, or with --home only the server log.
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

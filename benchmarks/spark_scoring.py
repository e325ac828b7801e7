"""`npsrisk score` on Spark against the DuckDB sliced path: time and peak memory of each.

    uv run python benchmarks/spark_scoring.py --customers 2000
    uv run python benchmarks/spark_scoring.py --customers 250000 500000 1000000 --master local[2]

For each size a demo export is made block by block (or reused under ``--data-root``), a
champion is trained once on the first size (or reused from ``--home``), then each path scores
the whole export end to end in its own fresh process, exactly as the CLI runs it:

- DuckDB: ``serving.batch.score_source`` (slices of active customers read from the files);
- Spark: ``serving.distributed.score_spark`` on ``--master`` (read, validate, text-score and
  build features on the cluster, score with ``mapInArrow``, publish Parquet).

Peak memory is the peak resident set of the whole process tree (the Python driver, the JVM
and its Python workers, sampled every 0.2 s), so the Spark figure includes the JVM's heap.
The per-size Spark times show the growth; a cluster of N executors runs the partition-parallel
stages (validation, per-customer aggregations after one shuffle by customer, text scoring,
``mapInArrow`` scoring, the Parquet write) N times wider, so expect roughly
``driver overhead + local time x cores here / (N x cores per executor)`` until the driver-side
steps (listing files, a few small collects, the final count) dominate.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))

from batch_scoring import END_TO_END, ensure_champion, ensure_data

SPARK_END_TO_END = """
import sys, time
from pathlib import Path
from npsrisk.settings import load_settings
from features.spark import spark_session
from serving.distributed import score_spark
from serving.state import load_champion
settings = load_settings(
    home=Path(sys.argv[2]),
    spark={"master": sys.argv[4], "conf": {"spark.driver.memory": sys.argv[5]}},
)
spark = spark_session(settings)
champion = load_champion(settings)
start = time.perf_counter()
result = score_spark(spark, sys.argv[1], champion.bundle, champion.card, sys.argv[3], None, True,
                     5, settings.serving.risk_tiers, Path(sys.argv[3]).parent / "work")
wall = time.perf_counter() - start
spark.stop()
print(f"{result.rows} {wall:.1f} 0 {result.rows_set_aside}")
"""


def run_tree(command: list[str]) -> tuple[str, float, float]:
    """Run a command; its stdout, the peak summed RSS of its process tree in MiB, and the CPU
    seconds (user + system) of the tree, each process as last sampled (a process that lives
    under 0.2 s may be missed): on a shared, noisy machine the CPU time says more than the
    wall time about what the work costs."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                tree = []
            rss = 0.0
            for p in tree:
                try:
                    with p.oneshot():
                        rss += p.memory_info().rss
                        times = p.cpu_times()
                        cpu[p.pid] = times.user + times.system
                except psutil.Error:
                    pass
            peak = max(peak, rss / 2**20)
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, err = process.communicate()
    done.set()
    watcher.join()
    if process.returncode:
        raise RuntimeError(err[-4000:])
    return out, peak, sum(cpu.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[2000])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument(
        "--driver-memory",
        default="6g",
        help="spark.driver.memory: on local[N] the executors live in the driver's JVM (the 1g "
        "default ran out of heap at 250,000 customers)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-snapshots", type=int, default=3)
    parser.add_argument("--data-root", type=Path, help="where the exports are made or reused")
    parser.add_argument("--home", type=Path, help="a home with a champion to reuse")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="npsrisk-spark-bench-"))
    root = (args.data_root or scratch).resolve()
    home = (args.home or scratch / "home").resolve()
    rows_out = []
    for i, customers in enumerate(args.customers):
        data = root / f"demo-{customers}"
        ensure_data(data, customers, args.seed)
        if i == 0:
            ensure_champion(data, home, args.max_snapshots)
        duck_out, duck_peak, duck_cpu = run_tree(
            [sys.executable, "-c", END_TO_END, str(data), str(home), str(scratch / "d.parquet")]
        )
        d_rows, d_wall, _, _ = duck_out.split()[-4:]
        spark_out, spark_peak, spark_cpu = run_tree(
            [
                sys.executable,
                "-c",
                SPARK_END_TO_END,
                str(data),
                str(home),
                str(scratch / f"s-{customers}"),
                args.master,
                args.driver_memory,
            ]
        )
        s_rows, s_wall, _, _ = spark_out.split()[-4:]
        assert d_rows == s_rows, (d_rows, s_rows)
        rows_out.append(
            (
                customers,
                int(d_rows),
                float(d_wall),
                duck_cpu,
                duck_peak,
                float(s_wall),
                spark_cpu,
                spark_peak,
            )
        )
        print(
            f"  {customers:,}: duckdb {d_wall} s ({duck_cpu:.0f} CPU s), spark {s_wall} s "
            f"({spark_cpu:.0f} CPU s)",
            flush=True,
        )
    print()
    print(f"Spark master {args.master}; each path in its own process, whole process tree's peak")
    print("s: the scoring call's wall time; CPU s: the whole process tree's user + system")
    header = (
        f"{'customers':>10} {'scored':>9} {'duckdb s':>9} {'CPU s':>7} {'duckdb MiB':>11} "
        f"{'spark s':>9} {'CPU s':>7} {'spark MiB':>10} {'spark/duckdb':>13}"
    )
    print(header)
    for customers, rows, dw, dc, dp, sw, sc, sp in rows_out:
        print(
            f"{customers:>10,} {rows:>9,} {dw:>9.1f} {dc:>7.0f} {dp:>11,.0f} {sw:>9.1f} "
            f"{sc:>7.0f} {sp:>10,.0f} {sw / dw:>12.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

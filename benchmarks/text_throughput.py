"""Time text scoring (satisfaction model + theme coding, and the lexicon alone) on many messages.

    uv run --with vadersentiment python benchmarks/text_throughput.py
    uv run --with vadersentiment python benchmarks/text_throughput.py --messages 200000
    uv run python benchmarks/text_throughput.py --long-only

The long-message pass scores one 1 MB and one 50 MB message (capped at
text.max_message_chars, as every run does), the lexicon on a whole 1 MB message, and VADER
as shipped against the linear one on the same 50 KB text.

Messages are customer-written texts of a demo company (chats, tickets, NPS comments), sampled
with replacement, so they repeat as real chats do ("thanks", "ok"); every step scores each
distinct text once. A second pass appends a unique reference to every message of a smaller
sample, which defeats that reuse: the worst case, where no text repeats. The floor is a plain
``str.lower()`` + ``len()`` pass over the same messages, timed in the same process.
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from demo.generator import DemoConfig, generate_demo
from text_analytics.lexicon import VaderLexicon
from text_analytics.sentiment import SatisfactionModel, fit_satisfaction_model
from text_analytics.signals import extract_customer_texts, score_messages
from text_analytics.themes import load_taxonomy


def peak_rss_mib() -> float:
    """Peak resident set size of this process, in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(step: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def fresh(model: SatisfactionModel) -> SatisfactionModel:
    """The same fitted model with cold caches, so no pass profits from an earlier one."""
    return pickle.loads(pickle.dumps(model))


def floor_pass(texts: list[str]) -> int:
    """The least any per-message work costs: lower-case and measure every text."""
    return sum(len(text.lower()) for text in texts)


def report(name: str, n: int, seconds: float, floor_seconds: float) -> None:
    print(
        f"{name:<44} {n:>9,} msgs {seconds:>8.1f} s {n / seconds:>12,.0f} msgs/s "
        f"{seconds / floor_seconds:>8.0f}x the floor"
    )


def long_messages(model: SatisfactionModel, taxonomy) -> None:
    """Time one very long message: capped scoring, and the lexicon uncapped."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from npsrisk.settings import TextSettings
    from text_analytics.lexicon import _linear_vader

    cap = TextSettings().max_message_chars
    unit = "This is terrible, awful and broken again. I hate it. "
    for mb in (1, 50):
        text = (unit * (mb * 2**20 // len(unit) + 1))[: mb * 2**20]
        frame = pd.DataFrame({"text": [text]})
        seconds = timed(lambda f=frame: score_messages(f, "text", fresh(model), taxonomy))
        print(f"{mb:>3} MB message, scored capped at {cap:,} chars: {seconds:8.3f} s")
    one_mb = (unit * (2**20 // len(unit) + 1))[: 2**20]
    uncapped = timed(lambda: VaderLexicon().compound([one_mb]))
    print(f"  1 MB message, lexicon uncapped (linear): {uncapped:8.2f} s")
    sample = one_mb[: 50 * 1024]
    shipped = timed(lambda: SentimentIntensityAnalyzer().polarity_scores(sample))
    linear = timed(lambda: _linear_vader().polarity_scores(sample))
    print(
        f" 50 KB message, VADER as shipped {shipped:.2f} s vs linear {linear:.3f} s "
        f"({shipped / linear:,.0f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=20_000, help="demo company size")
    parser.add_argument("--unique-messages", type=int, default=100_000, help="no-repeat pass")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--long-only", action="store_true", help="only the long-message pass")
    args = parser.parse_args()
    if args.long_only:
        demo = generate_demo(DemoConfig(customers=2000, seed=args.seed))
        long_messages(fit_satisfaction_model(demo.tables["nps_responses"]), load_taxonomy())
        print(f"peak memory: {peak_rss_mib():,.0f} MiB")
        return

    print(f"cores: {os.cpu_count()}; demo company of {args.customers:,} customers")
    demo = generate_demo(DemoConfig(customers=args.customers, seed=args.seed))
    pool = extract_customer_texts(demo.tables)
    model = fit_satisfaction_model(demo.tables["nps_responses"])
    taxonomy = load_taxonomy()
    print(f"model: {model.describe()}")
    rng = np.random.default_rng(args.seed)
    sample = pool.iloc[rng.integers(0, len(pool), args.messages)].reset_index(drop=True)
    texts = sample["text"].tolist()
    print(
        f"{len(texts):,} messages sampled from {len(pool):,} customer texts "
        f"({sample['text'].nunique():,} distinct)"
    )

    floor = timed(lambda: floor_pass(texts))
    report("floor: str.lower() + len()", len(texts), floor, floor)
    scored = timed(lambda: score_messages(sample, "text", fresh(model), taxonomy))
    report("(a) model + themes (score_messages)", len(texts), scored, floor)
    lexicon_seconds = timed(lambda: VaderLexicon().compound(texts))
    report("(b) lexicon alone (VADER, cold cache)", len(texts), lexicon_seconds, floor)

    n_unique = min(args.unique_messages, args.messages)
    unique = sample.iloc[:n_unique].copy()
    unique["text"] = [f"{text} ref{i}" for i, text in enumerate(unique["text"])]
    unique_texts = unique["text"].tolist()
    unique_floor = timed(lambda: floor_pass(unique_texts))
    print(f"no repeats: {n_unique:,} messages made distinct by a reference number")
    report("floor: str.lower() + len()", n_unique, unique_floor, unique_floor)
    report(
        "(a) model + themes, no repeats",
        n_unique,
        timed(lambda: score_messages(unique, "text", fresh(model), taxonomy)),
        unique_floor,
    )
    report(
        "(b) lexicon alone, no repeats",
        n_unique,
        timed(lambda: VaderLexicon().compound(unique_texts)),
        unique_floor,
    )
    long_messages(model, taxonomy)
    print(f"peak memory: {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    pd.set_option("display.width", 120)
    main()

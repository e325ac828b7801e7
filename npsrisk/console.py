"""Terminal output shared by the commands: progress over known steps, tables, errors."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

# Off a terminal (a pipe, a log file, CI) nothing is wrapped: a path or a message stays on
# one line, so it can be copied and grepped. Rich would otherwise wrap at 80 columns.
UNWRAPPED_WIDTH = 1000


def make_console(stderr: bool = False) -> Console:
    probe = Console(stderr=stderr)
    if probe.is_terminal or os.environ.get("COLUMNS"):
        return probe
    return Console(stderr=stderr, soft_wrap=True, width=UNWRAPPED_WIDTH)


console = make_console()
err_console = make_console(stderr=True)


def quiet_libraries() -> None:
    """Libraries log at INFO by default; the CLI says what matters itself."""
    for name in ("mlflow", "alembic", "py4j", "urllib3", "httpx", "numba", "shap"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def steps(total: int, title: str) -> Iterator[Callable[[str], None]]:
    """A progress bar over ``total`` named steps; call the yielded function at each step."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[title]}[/bold] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    with progress:
        task = progress.add_task("starting", total=total, title=title)
        started = False

        def advance(message: str) -> None:
            nonlocal started
            if started:
                progress.advance(task)
            started = True
            progress.update(task, description=message)

        yield advance
        progress.update(task, completed=total, description="done")


def print_frame(frame: pd.DataFrame, title: str | None = None, digits: int = 4) -> None:
    table = Table(title=title, show_lines=False)
    index_names = [
        n or "" for n in (frame.index.names if frame.index.nlevels > 1 else [frame.index.name])
    ]
    show_index = not isinstance(frame.index, pd.RangeIndex)
    if show_index:
        for name in index_names:
            table.add_column(str(name))
    for column in frame.columns:
        label = " ".join(str(c) for c in column) if isinstance(column, tuple) else str(column)
        table.add_column(label, justify="right")
    for idx, row in frame.iterrows():
        cells = []
        if show_index:
            cells += [str(i) for i in (idx if isinstance(idx, tuple) else (idx,))]
        for value in row:
            if isinstance(value, float):
                cells.append(
                    "" if pd.isna(value) else f"{value:.{digits}f}".rstrip("0").rstrip(".")
                )
            else:
                cells.append(str(value))
        table.add_row(*cells)
    console.print(table)


def wrote(what: str, where: object) -> None:
    console.print(f"[green]wrote[/green] {what}: {where}")


def fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/bold red] {message}")


@contextmanager
def counting(title: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over a count known only once work starts: ``update(done, total)``."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[title]}[/bold]"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task(title, total=None, title=title, count="")

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, count=f"{done:,}/{total:,} {unit}")

        yield update

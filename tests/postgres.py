"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl in a temp dir, on a free port."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from serving.process import free_port


def postgres_bindir() -> Path | None:
    """The folder of initdb and pg_ctl (from pg_config), or None when PostgreSQL is absent."""
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    folder = Path(out.stdout.strip())
    return folder if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file() else None


def _as_postgres(args: list[str]) -> list[str]:
    # initdb refuses to run as root; run the server binaries as the postgres user instead.
    if os.geteuid() != 0:
        return args
    runuser = shutil.which("runuser")
    return (
        [runuser, "-u", "postgres", "--", *args]
        if runuser
        else ["su", "postgres", "-c", " ".join(args)]
    )


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a cluster; yield its SQLAlchemy URL; stop it and delete its files."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found (pg_config --bindir)")
    root = Path(tempfile.mkdtemp(prefix="npsrisk-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    port = free_port()
    log = root / "server.log"
    try:
        subprocess.run(
            _as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            _as_postgres(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
                    "-c fsync=off -c full_page_writes=off",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                capture_output=True,
                timeout=120,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)

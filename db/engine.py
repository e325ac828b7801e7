"""Connections and sessions: one engine per URL, SQLite tuned for several processes at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from npsrisk.settings import ConfigError, Settings

SQLITE_BUSY_MS = 30_000


class DatabaseNotReady(ConfigError):
    """The database is missing or behind the code's migrations; the message says what to run."""


def _tune_sqlite(dbapi_connection, _record) -> None:
    # WAL lets readers run beside one writer; busy_timeout makes a second relay (or the
    # service and a cron job) wait for the write lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_database_engine(url: str) -> Engine:
    """An engine for ``url``; an SQLite file's folder is created here (the explicit write)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000})
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True)


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """An engine and its session factory. ``with db.session() as s:`` commits on success."""

    def __init__(self, url: str, settings: Settings | None = None):
        self.url = url
        self.settings = settings
        self.engine = create_database_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.database_url, settings)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({redacted(self.url)!r})"


def open_database(settings: Settings, upgrade: bool | None = None) -> Database:
    """The configured database, checked to be at the code's migration head.

    ``upgrade=None`` migrates the default SQLite file under the home by itself (it is the
    project's own file), but never a configured server, whose migrations are a deliberate
    step: `npsrisk db upgrade`. The service's workers pass ``upgrade=False``.
    """
    from db.migrate import current_revision, head_revision, upgrade_database

    db = Database.from_settings(settings)
    if upgrade is None:
        upgrade = settings.database.url is None
    current, head = current_revision(db), head_revision()
    if current != head:
        if upgrade:
            upgrade_database(db)
        else:
            db.dispose()
            raise DatabaseNotReady(
                f"the database {redacted(db.url)} is at revision {current or 'none'}, the code "
                f"needs {head}: run `npsrisk db upgrade`"
            )
    return db

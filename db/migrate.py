"""Alembic, driven from code: `npsrisk db upgrade` and `npsrisk serve` (once, before the
workers start) call ``upgrade_database``; the migration scripts live in db/migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from db.engine import Database

MIGRATIONS_PATH = Path(__file__).parent / "migrations"


def alembic_config(db: Database | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_PATH))
    if db is not None:
        # '%' is Alembic's interpolation character; a password may contain it.
        config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_database(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate to ``revision``; returns (before, after). Safe to run on a current database."""
    before = current_revision(db)
    config = alembic_config(db)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return before, current_revision(db)

"""Where the interventions tables attach to the shared database layer.

TEMPORARY until the monitoring branch's database layer lands: a plain MetaData and engine
factory with the same shape, replaced by an import of that layer on merge.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()


def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(url, future=True)


def create_schema(engine: sa.Engine) -> None:
    import interventions.tables  # noqa: F401  (registers the tables)

    metadata.create_all(engine)


def database_url(settings) -> str:
    return f"sqlite:///{settings.home_path / 'npsrisk.db'}"


def open_engine(settings) -> sa.Engine:
    """The engine for the configured database, schema created (migrations once merged)."""
    settings.home_path.mkdir(parents=True, exist_ok=True)
    engine = engine_for(database_url(settings))
    create_schema(engine)
    return engine

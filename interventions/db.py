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

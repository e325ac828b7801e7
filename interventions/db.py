"""The interventions store on the shared database (db/): opened from the settings."""

from __future__ import annotations

from db import Database, open_database
from npsrisk.settings import Settings


def open_store_database(settings: Settings, upgrade: bool | None = None) -> Database:
    """The configured database at the migration head (the default SQLite file migrates itself;
    a configured server needs `npsrisk db upgrade`)."""
    return open_database(settings, upgrade=upgrade)

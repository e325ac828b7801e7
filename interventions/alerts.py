"""Alerts for humans and CRM events from the interventions package, via the shared outbox."""

from __future__ import annotations


def outbox_hook(settings):
    """The store's event hook (wired to the shared alerting module on merge)."""
    return None

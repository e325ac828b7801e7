"""Who owns a follow-up: an owners file, else the customers table's `owner` column.

Owners are personal data: they route work and alerts, are kept in the operational database
and never become a feature, an MLflow parameter or a log line.

Owners file (YAML)::

    customers: {C-000123: alice@example.com}      # one customer -> a person
    segments:                                     # first match wins
      - {column: plan_tier, value: enterprise, owner: ent-desk@example.com}
      - {column: region, value: emea, role: support_lead, owner: emea-support@example.com}
    roles: {support_lead: support-lead@example.com}  # a role's fallback person

or a CSV with columns ``customer_id, owner`` (optionally ``role``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class OwnersError(ValueError):
    """An owners file that cannot be used; the message names what to fix."""


class _SegmentRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column: str
    value: str | int | float | bool
    owner: str = Field(min_length=1)
    role: str | None = None


class _OwnersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customers: dict[str, str] = Field(default_factory=dict)
    segments: list[_SegmentRule] = Field(default_factory=list)
    roles: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class OwnerDirectory:
    """Resolves the person for (customer, role): file customer > segment > owner column > role."""

    by_customer: Mapping[str, str] = field(default_factory=dict)
    by_customer_role: Mapping[tuple[str, str], str] = field(default_factory=dict)
    segments: tuple[_SegmentRule, ...] = ()
    roles: Mapping[str, str] = field(default_factory=dict)
    account_owner: Mapping[str, str] = field(default_factory=dict)  # customers.owner

    def owner_of(self, customer_id: str, role: str | None, context: Any = None) -> str | None:
        if role is not None and (customer_id, role) in self.by_customer_role:
            return self.by_customer_role[(customer_id, role)]
        if customer_id in self.by_customer:
            return self.by_customer[customer_id]
        segments = getattr(context, "segments", None) or {}
        for rule in self.segments:
            if rule.role is not None and rule.role != role:
                continue
            if column_value_matches(segments.get(rule.column), rule.value):
                return rule.owner
        if customer_id in self.account_owner:
            return self.account_owner[customer_id]
        return self.roles.get(role) if role is not None else None

    def with_account_owners(self, owners: Mapping[str, str]) -> OwnerDirectory:
        return OwnerDirectory(
            self.by_customer, self.by_customer_role, self.segments, self.roles, dict(owners)
        )

    @property
    def segment_columns(self) -> set[str]:
        return {rule.column for rule in self.segments}


def column_value_matches(value: Any, wanted: Any) -> bool:
    return value is not None and str(value) == str(wanted)


def load_owners(path: Path | None) -> OwnerDirectory:
    """The owners file at ``path`` (YAML or CSV), or an empty directory."""
    if path is None:
        return OwnerDirectory()
    path = Path(path).expanduser()
    if not path.is_file():
        raise OwnersError(f"owners file {path} does not exist: fix interventions.owners_path")
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = {"customer_id", "owner"} - set(frame.columns)
        if missing:
            raise OwnersError(f"{path}: needs columns customer_id and owner (missing {missing})")
        frame = frame[(frame["customer_id"] != "") & (frame["owner"] != "")]
        if "role" in frame:
            with_role = frame[frame["role"] != ""]
            plain = frame[frame["role"] == ""]
            return OwnerDirectory(
                dict(zip(plain["customer_id"], plain["owner"], strict=True)),
                {
                    (c, r): o
                    for c, r, o in zip(
                        with_role["customer_id"], with_role["role"], with_role["owner"], strict=True
                    )
                },
            )
        return OwnerDirectory(dict(zip(frame["customer_id"], frame["owner"], strict=True)))
    try:
        document = yaml.safe_load(path.read_text()) or {}
        parsed = _OwnersFile.model_validate(document)
    except yaml.YAMLError as exc:
        raise OwnersError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise OwnersError(f"{path}: {problems}") from None
    return OwnerDirectory(parsed.customers, {}, tuple(parsed.segments), parsed.roles)


def account_owners(customers: pd.DataFrame) -> dict[str, str]:
    """customer_id -> owner from the customers table's optional `owner` column."""
    if "owner" not in customers.columns:
        return {}
    frame = customers[["customer_id", "owner"]].dropna()
    frame = frame[frame["owner"].astype(str).str.strip() != ""]
    return dict(zip(frame["customer_id"].astype(str), frame["owner"].astype(str), strict=True))

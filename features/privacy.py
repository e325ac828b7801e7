"""Personal data: which columns hold it, and masking it inside free text."""

from __future__ import annotations

import re

import pandas as pd

# Column names that hold personal or identifying data, matched on word parts of the name.
_NAME_PATTERN = re.compile(
    r"(^|_)(e?_?mail|email|phone|mobile|telephone|tel|fax|contact|first_?name|last_?name|"
    r"full_?name|surname|name|address|street|postcode|zip|ssn|birth|dob|passport|iban)($|_)"
)
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Seven or more digits, optionally grouped by spaces, dots, dashes or brackets, with a +.
PHONE_RE = re.compile(r"(?<![\w.])\+?\(?\d[\d\s().-]{5,}\d(?![\w])")

# Dates and times look like phone numbers to PHONE_RE; they are not personal data.
_DATE_LIKE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_SAMPLE = 500
_CONTENT_SHARE = 0.3


def _looks_like(values: pd.Series, pattern: re.Pattern[str]) -> float:
    sample = values.dropna().astype(str)
    if sample.empty:
        return 0.0
    sample = sample.sample(min(_SAMPLE, len(sample)), random_state=0)
    return float(sample.map(lambda v: bool(pattern.search(v))).mean())


def _phone_share(values: pd.Series) -> float:
    sample = values.dropna().astype(str)
    if sample.empty:
        return 0.0
    sample = sample.sample(min(_SAMPLE, len(sample)), random_state=0)
    return float(sample.map(lambda v: bool(PHONE_RE.fullmatch(v.strip())) and _is_phone(v)).mean())


def detect_personal_data(frame: pd.DataFrame, extra: list[str] | None = None) -> dict[str, str]:
    """Columns that hold personal data, each with why it was flagged."""
    flagged: dict[str, str] = {}
    extra_set = {c.lower() for c in (extra or [])}
    for column in frame.columns:
        name = str(column).lower()
        if name == "customer_id":
            continue
        if name in extra_set:
            flagged[column] = "listed in data.personal_data_columns"
        elif _NAME_PATTERN.search(name):
            flagged[column] = "column name suggests personal data"
        elif frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            if _looks_like(frame[column], EMAIL_RE) >= _CONTENT_SHARE:
                flagged[column] = "values look like e-mail addresses"
            elif _phone_share(frame[column]) >= _CONTENT_SHARE:
                flagged[column] = "values look like phone numbers"
    return flagged


def _is_phone(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    return digits >= 7 and not _DATE_LIKE.fullmatch(candidate.strip())


def mask_personal_data(text: str) -> str:
    """Replace e-mail addresses and phone numbers in free text with placeholders."""
    text = EMAIL_RE.sub("[email]", text)
    return PHONE_RE.sub(lambda m: "[phone]" if _is_phone(m.group()) else m.group(), text)

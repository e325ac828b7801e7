import pandas as pd
import pytest

from features.attributes import infer_attribute_schema, static_attributes
from features.privacy import detect_personal_data, mask_personal_data


def test_personal_data_is_found_by_name_and_by_content():
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "contact_name": ["Ana Silva", "Ben Okafor", "Cy Martin"],
            "owner": ["ana@acme.com", "ben@beta.io", "cy@gamma.org"],  # name gives nothing away
            "hotline": ["+1 555 123 4567", "(020) 7946 0958", "555-867-5309"],
            "plan_tier": ["pro", "starter", "pro"],
            "seats": [3, 4, 5],
            "account_ref": ["x1", "x2", "x3"],
        }
    )
    found = detect_personal_data(frame, extra=["account_ref"])
    assert set(found) == {"contact_name", "owner", "hotline", "account_ref"}
    assert "e-mail" in found["owner"] and "phone" in found["hotline"]


def test_attribute_schema_never_uses_personal_data():
    n = 200
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "signup_date": pd.Timestamp("2024-01-01"),
            "plan_tier": ["pro", "starter"] * (n // 2),
            "seats": [str(i) for i in range(n)],  # numbers as text, as in a CSV
            "annual": ["true", "false"] * (n // 2),
            "contact_email": [f"user{i}@x.com" for i in range(n)],
            "crm_note": [f"free text {i}" for i in range(n)],
            "legacy_score": [1.0] * n,
            "empty": [None] * n,
        }
    )
    schema = infer_attribute_schema(frame, excluded_columns=["legacy_score"])
    assert schema.numeric == ["seats"]
    assert schema.boolean == ["annual"]
    assert schema.categorical == ["plan_tier"]
    assert set(schema.excluded) == {"contact_email", "crm_note", "legacy_score", "empty"}
    typed = static_attributes(frame, schema)
    assert "contact_email" not in typed.columns
    assert typed["seats"].dtype == float and typed["annual"].tolist()[:2] == [1.0, 0.0]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("reach me at jane.doe@acme.com please", "reach me at [email] please"),
        ("call +1-555-123-4567 today", "call [phone] today"),
        ("call (020) 7946 0958", "call [phone]"),
        ("we have 3 open tickets since 2024-05-01", "we have 3 open tickets since 2024-05-01"),
        ("order 12345", "order 12345"),
    ],
)
def test_masking_removes_emails_and_phone_numbers_only(text, masked):
    assert mask_personal_data(text) == masked

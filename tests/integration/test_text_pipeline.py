import pandas as pd
import pytest

from demo.generator import DemoConfig, generate_demo
from features.privacy import EMAIL_RE
from text_analytics.report import write_theme_report
from text_analytics.sentiment import fit_satisfaction_model
from text_analytics.signals import extract_customer_texts, score_messages
from text_analytics.themes import load_taxonomy


@pytest.mark.slow
def test_demo_company_texts_to_theme_report(tmp_path):
    demo = generate_demo(DemoConfig(customers=1500, seed=8))
    tables = demo.tables
    model = fit_satisfaction_model(tables["nps_responses"])
    assert model.kind_ == "learned"
    taxonomy = load_taxonomy()
    texts = extract_customer_texts(tables)
    assert texts["text"].str.contains("@").any()  # the demo's customers paste their e-mails
    messages = score_messages(texts, "text", model, taxonomy)
    responses = score_messages(tables["nps_responses"], "comment", model, taxonomy)
    assert not messages["text"].str.contains(EMAIL_RE).any()
    # Negative texts by the generator's truth score lower than positive ones.
    truth = messages.merge(demo.text_truth, on=["source", "key"])
    means = truth.groupby("sentiment")["text_score"].mean()
    assert means["negative"] < means["neutral"] < means["positive"]
    assert means["negative"] < means["mixed"] < means["positive"]
    paths = write_theme_report(
        messages, responses, tables["customers"], tmp_path, model_description=model.describe()
    )
    page = paths["html"].read_text()
    assert "learned satisfaction model" in page
    assert not EMAIL_RE.search(page)
    impact = pd.read_csv(paths["theme_impact"])
    assert set(impact["theme"]) == set(taxonomy.ids)
    trend = pd.read_csv(paths["sentiment_trend"])
    assert set(trend["segment"]) == {"starter", "pro", "enterprise"}

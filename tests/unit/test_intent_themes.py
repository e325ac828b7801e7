"""Intent themes: stated plans to leave, cut or review, detected negation-aware, and the demo's
intent messages (rates tied to health and churn, held-out phrasings kept apart)."""

import numpy as np
import pandas as pd
import pytest

from demo import phrases
from demo.generator import (
    INTENT_BASE_RATE,
    INTENT_LEAD_RATE,
    INTENT_LEAD_WEEKS,
    DemoConfig,
    generate_demo,
    intent_rates,
)
from text_analytics.signals import extract_customer_texts
from text_analytics.themes import code_themes, join_theme_labels, load_taxonomy
from text_analytics.tokens import join_tokens, tokenize

INTENTS = set(phrases.INTENT_THEMES)


def intents_of(text: str, taxonomy=None) -> set[str]:
    label = join_theme_labels(code_themes([text], taxonomy)).iloc[0]
    return set(label.split("|")) & INTENTS


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("we are evaluating another vendor", "competitor_evaluation"),
        ("budget cuts", "budget_cuts"),
        ("our admin who championed this left", "champion_left"),
        ("reviewing renewals", "renewal_review"),
        ("we need to reduce our seats next quarter", "downsizing"),
        # Words apart, inflected, or joined by a concept pair.
        ("we're reviewing all of our renewals", "renewal_review"),
        ("our finance team froze all software spending", "budget_cuts"),
        ("Can we drop to ten users next month?", "downsizing"),
        # Misspelled.
        ("we are evalutaing other vendors", "competitor_evaluation"),
        ("buget cuts hit us hard", "budget_cuts"),
        ("after our admin resignd the tool has no owner", "champion_left"),
        # Very short.
        ("downgrade", "downsizing"),
        ("RFP?", "competitor_evaluation"),
    ],
)
def test_stated_intents_are_detected(text, intent):
    assert intent in intents_of(text)


@pytest.mark.parametrize(
    "text",
    [
        "we are not evaluating other vendors",
        "we are not currently evaluating other vendors",
        "no budget cuts this year",
        "we have no plans to cut seats",
        "our admin hasn't left, she loves the tool",
        "we won't cut seats, the team is growing",
        "never considered cancelling our subscription",
        # Everyday talk that shares words with an intent.
        "love the new user management",
        "how do you compare to Zendrix?",
        "the renewal quote is outrageous",
        "we are paying for seats we don't use",
    ],
)
def test_negated_and_everyday_texts_state_no_intent(text):
    assert intents_of(text) == set()


def test_a_negation_in_another_clause_does_not_cancel_an_intent():
    assert intents_of("not happy with support, and we are evaluating another vendor") == {
        "competitor_evaluation"
    }
    assert intents_of("we can't justify it: budget cuts are coming") == {"budget_cuts"}


def test_every_training_phrasing_is_detected_and_no_denial_fires():
    for theme, bank in phrases.INTENT_PHRASES.items():
        for template, _ in bank:
            assert theme in intents_of(template.format(c="Zendrix")), template
    for template, _ in phrases.DENIED_INTENT:
        assert intents_of(template) == set(), template


def test_held_out_phrasings_are_in_no_seed_term_and_no_training_phrasing():
    taxonomy = load_taxonomy()
    seeds = {join_tokens(t) for theme in taxonomy.themes for t in theme.seed_terms}
    seen = {join_tokens(t) for bank in phrases.INTENT_PHRASES.values() for t, _ in bank}
    heldout = [t for bank in phrases.HELDOUT_INTENT_PHRASES.values() for t, _ in bank]
    for theme, blind in phrases.BLIND_INTENT_PHRASES.items():
        assert all(p in phrases.HELDOUT_INTENT_PHRASES[theme] for p in blind)
    intent_seeds = [
        join_tokens(t)
        for theme in taxonomy.themes
        if theme.intent
        for t in theme.seed_terms
        if len(tokenize(t)) > 1
    ]
    for text in heldout:
        words = join_tokens(text)
        assert words not in seen and words not in seeds, text
    # The blind phrasings (written after the detector was frozen) hold no multi-word intent
    # seed phrase verbatim: what the detector finds there, it finds by generalising.
    for bank in phrases.BLIND_INTENT_PHRASES.values():
        for text, _ in bank:
            words = f" {join_tokens(text)} "
            assert not any(f" {s} " in words for s in intent_seeds), text


def test_intent_rates_follow_health_and_precede_churn():
    data = generate_demo(DemoConfig(customers=600, seed=5))
    world = data.world
    rates = intent_rates(world)
    stated = rates["stated"]
    active = world.active()
    # Unhappier weeks carry a higher base rate; weeks before a churn the decision's rate.
    w = np.arange(world.weeks)[None, :]
    to_churn = world.churn_week[:, None] - w
    deciding = (
        (to_churn >= INTENT_LEAD_WEEKS[0])
        & (to_churn <= INTENT_LEAD_WEEKS[1])
        & (world.churn_week[:, None] < world.weeks)
        & active
    )
    calm = active & ~deciding
    expected = INTENT_BASE_RATE * np.exp(-0.9 * world.health)
    assert np.allclose(stated[calm], expected[calm])
    assert np.allclose(stated[deciding], expected[deciding] + INTENT_LEAD_RATE)
    assert (stated[~active] == 0).all() and (rates["denial"][~active] == 0).all()
    # The data: intent messages are customer chats with their truth, before the churn date.
    truth = data.text_truth
    intent = truth[truth["themes"].fillna("").str.contains("|".join(INTENTS))]
    assert len(intent) > 20 and not intent["heldout_phrasing"].astype(bool).any()
    counts = data.manifest["intent_messages"]
    assert set(counts) <= INTENTS | {"denial"} and sum(counts.values()) == len(
        truth[truth["heldout_phrasing"].notna()]
    )
    texts = extract_customer_texts(data.tables).merge(intent, on=["source", "key"])
    assert len(texts) == len(intent[intent["key"].isin(texts["key"])]) > 0
    churn = data.tables["churn"].set_index("customer_id")["churned_at"]
    when = texts["customer_id"].map(churn)
    assert (texts["timestamp"][when.notna()] < when[when.notna()]).all()


def test_held_out_phrasings_start_at_the_configured_date_and_others_stay_unchanged():
    start = pd.Timestamp("2025-03-01")
    plain = generate_demo(DemoConfig(customers=400, seed=6))
    held = generate_demo(DemoConfig(customers=400, seed=6, intent_heldout_from=start.date()))
    for name in ("customers", "usage", "tickets", "nps_responses", "churn"):
        pd.testing.assert_frame_equal(plain.tables[name], held.tables[name])
    truth = held.text_truth[held.text_truth["heldout_phrasing"].notna()]
    chats = extract_customer_texts(held.tables)
    chats = chats.merge(truth, on=["source", "key"])
    later = chats["timestamp"] >= start
    assert chats.loc[later, "heldout_phrasing"].astype(bool).all()
    assert not chats.loc[~later, "heldout_phrasing"].astype(bool).any()
    heldout = {
        t.format(c=c)
        for b in phrases.HELDOUT_INTENT_PHRASES.values()
        for t, _ in b
        for c in phrases.COMPETITORS
    }
    denials = {t for t, _ in phrases.DENIED_INTENT}
    assert set(chats.loc[later, "text"]) <= heldout | denials


def test_a_user_intent_theme_with_concepts_is_negation_aware(tmp_path):
    path = tmp_path / "themes.yaml"
    path.write_text(
        "themes:\n"
        "  merger:\n"
        "    intent: true\n"
        "    label: a merger\n"
        "    description: The customer is being acquired or merging.\n"
        "    seed_terms: [we were acquired]\n"
        "    concepts:\n"
        "      - [merger, acquisition, acquired]\n"
        "      - [parent company, new owners]\n"
    )
    taxonomy = load_taxonomy(path)
    assert "merger" in taxonomy.intent_ids
    found = join_theme_labels(
        code_themes(
            [
                "we were acquired last month",
                "after the merger the new owners pick the tools",
                "we were not acquired, just rumours",
            ],
            taxonomy,
        )
    )
    assert ["merger" in f.split("|") for f in found] == [True, True, False]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "themes:\n  x:\n    description: d\n    seed_terms: [a]\n    concepts: [[b], [c]]\n"
    )
    with pytest.raises(ValueError, match="only for intent themes"):
        load_taxonomy(bad)

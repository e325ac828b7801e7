from functools import lru_cache

import pandas as pd
import pytest

from demo import phrases
from demo.generator import DemoConfig, generate_demo
from text_analytics.signals import extract_customer_texts
from text_analytics.themes import code_themes, evaluate_themes, join_theme_labels, load_taxonomy
from text_analytics.tokens import WordLookup, inflect, mark_negation

PRODUCT, RELIABILITY, SUPPORT = "product_bugs", "reliability_performance", "support_experience"
PRICING, ONBOARDING, COMPETITORS = "pricing_billing_value", "onboarding_education", "competitors"


def coded(text: str, taxonomy=None) -> set[str]:
    label = join_theme_labels(code_themes([text], taxonomy)).iloc[0]
    return set(label.split("|")) - {""}


def test_default_taxonomy_has_the_generator_theme_ids_with_descriptions_and_seeds():
    taxonomy = load_taxonomy()
    assert taxonomy.ids == list(phrases.THEMES + phrases.INTENT_THEMES)
    assert taxonomy.intent_ids == list(phrases.INTENT_THEMES)
    for theme in taxonomy.themes:
        assert theme.description and theme.seed_terms
    assert {"acmely", "zendrix", "brightloop", "helpstack", "quorra"} <= set(
        taxonomy.theme(COMPETITORS).seed_terms
    )
    assert {"switch to", "competitor", "alternative", "cheaper elsewhere"} <= set(
        taxonomy.theme(COMPETITORS).seed_terms
    )


def test_a_user_yaml_adds_replaces_and_disables_themes(tmp_path):
    user = tmp_path / "my_themes.yaml"
    user.write_text(
        """
themes:
  security_privacy:
    description: Security and privacy - data protection, GDPR, breaches, access control.
    seed_terms: [security, gdpr, data breach, privacy]
    exclude_terms: [security deposit]
  competitors:
    description: Only the vendors we really lose deals to.
    seed_terms: [zendrix]
  onboarding_education:
    disable: true
"""
    )
    taxonomy = load_taxonomy(user)
    assert taxonomy.ids == [
        PRODUCT,
        RELIABILITY,
        SUPPORT,
        PRICING,
        COMPETITORS,
        *phrases.INTENT_THEMES,
        "security_privacy",
    ]
    assert taxonomy.theme(COMPETITORS).seed_terms == ("zendrix",)
    assert coded("worried about GDPR after the data breach", taxonomy) == {"security_privacy"}
    assert coded("we pay a security deposit", taxonomy) == {PRICING}
    assert coded("looking at Acmely", taxonomy) == set()  # replaced theme: old seeds are gone
    assert coded("looking at Zendrix", taxonomy) == {COMPETITORS}
    assert coded("the setup guide is outdated", taxonomy) == set()  # disabled
    frame = code_themes(["gdpr question"], taxonomy)
    assert list(frame.columns) == taxonomy.ids


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("themes:\n  x:\n    description: d\n    seeds: [a]\n", "seeds"),
        ("themes:\n  x:\n    seed_terms: [a]\n", "description"),
        ("themes:\n  x:\n    description: d\n    seed_terms: []\n", "seed_terms"),
        ("themes:\n  Bad-Id:\n    description: d\n    seed_terms: [a]\n", "Bad-Id"),
        ("topics: {}\n", "themes"),
    ],
)
def test_a_broken_user_yaml_fails_naming_the_problem(tmp_path, content, message):
    path = tmp_path / "themes.yaml"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_taxonomy(path)


@pytest.mark.parametrize(
    ("text", "themes"),
    [
        ("love the product, hate the billing", {PRODUCT, PRICING}),
        ("the app is slow and the invoice is wrong", {RELIABILITY, PRICING}),
        ("we found a cheaper alternative", {COMPETITORS, PRICING}),
        ("thinking about switching to Zendrix", {COMPETITORS}),
        ("your support team never answered my ticket", {SUPPORT}),
        ("the docs are outdated and onboarding took weeks", {ONBOARDING}),
        ("the dashboard crashed twice and support took days to reply", {PRODUCT, SUPPORT}),
        # An exclude term keeps "fast" from meaning speed, but not other speed words.
        ("thanks for the fast answer", {SUPPORT}),
        ("thanks for the fast answer, but performance is awful", {SUPPORT, RELIABILITY}),
        # A bare feature name codes the product only where nothing else is said.
        ("love the new dashboard", {PRODUCT}),
        ("setting up the dashboard was confusing", {ONBOARDING}),
        ("love the new dashboard, but setting up SSO was confusing", {PRODUCT, ONBOARDING}),
        ("thanks", set()),
        ("ok", set()),
        ("great!!", set()),
    ],
)
def test_texts_are_coded_with_zero_one_or_several_themes(text, themes):
    assert coded(text) == themes


@pytest.mark.parametrize(
    ("text", "themes"),
    [
        ("the dashbord keeps crashng", {PRODUCT}),
        ("invoce was wrong again", {PRICING}),
        ("suport never answerd my tiket", {SUPPORT}),
        ("performence has been awful lately", {RELIABILITY}),
        # The competitors theme, and an intent: evaluating alternatives.
        ("we are evaluating an alternatvie", {COMPETITORS, "competitor_evaluation"}),
        ("the onbaording was a mess", {ONBOARDING}),
        ("the traiinng was useless", {ONBOARDING}),
        ("CRASHES all the time", {PRODUCT}),
        # One letter off but a different word: no theme from it.
        ("this bug is killing us", {PRODUCT}),
        ("really like it", set()),
        ("the board wants a decision", set()),
    ],
)
def test_misspellings_and_inflections_are_tolerated_without_false_friends(text, themes):
    assert coded(text) == themes


def test_word_lookup_rules():
    lookup = WordLookup({"invoice": "invoice", "reply": "reply", "billing": "billing"})
    assert lookup.lookup("invoce") == "invoice"  # deletion, long word
    assert lookup.lookup("invoiec") == "invoice"  # swap
    assert lookup.lookup("innvoice") == "invoice"  # doubled letter
    assert lookup.lookup("killing") is None  # first letter differs
    assert lookup.lookup("really") is None  # five-letter words: no substitutions
    assert lookup.lookup("rpely") == "reply"  # swap after the first letter
    assert lookup.lookup("erply") is None  # first letter swapped
    assert {"crashes", "crashed", "crashing"} <= inflect("crash")
    assert {"buggy", "bugs"} <= inflect("bug")
    assert mark_negation("Not happy with support, love the app") == (
        "not neg_happy neg_with neg_support love the app"
    )


def test_evaluate_themes_on_a_hand_made_example():
    texts = ["the app crashed", "the invoice is wrong", "hello"]
    truth = [PRODUCT, f"{PRODUCT}|{PRICING}", ""]
    table = evaluate_themes(texts, truth).set_index(["theme", "metric"])["value"]
    assert table[(PRODUCT, "precision")] == 1.0
    assert table[(PRODUCT, "recall")] == 0.5
    assert table[(PRICING, "f1")] == 1.0
    assert table[("all", "micro_f1")] == pytest.approx(0.8)  # tp 2, fp 0, fn 1
    assert table[("all", "exact_set_accuracy")] == pytest.approx(2 / 3)


@lru_cache(maxsize=1)
def demo_texts_with_truth() -> pd.DataFrame:
    demo = generate_demo(DemoConfig(customers=1500, seed=3))
    texts = extract_customer_texts(demo.tables)
    return texts.merge(demo.text_truth, on=["source", "key"], how="inner", validate="one_to_one")


def test_customer_texts_carry_the_keys_of_the_demo_truth():
    demo = generate_demo(DemoConfig(customers=200, seed=4))
    texts = extract_customer_texts(demo.tables)
    assert set(texts["source"]) == {"chats", "tickets", "nps_responses"}
    assert list(texts.columns) == ["customer_id", "timestamp", "source", "key", "text"]
    truth_keys = set(zip(demo.text_truth["source"], demo.text_truth["key"], strict=True))
    keys = set(zip(texts["source"], texts["key"], strict=True))
    assert keys <= truth_keys
    # Every customer chat message and every ticket is there (NPS answers without comment not).
    assert (texts["source"] == "chats").sum() == (
        demo.tables["chats"]["author"] == "customer"
    ).sum()
    assert (texts["source"] == "tickets").sum() == len(demo.tables["tickets"])


def test_theme_accuracy_against_the_demo_ground_truth():
    merged = demo_texts_with_truth()
    table = evaluate_themes(merged["text"], merged["themes"])
    assert list(table.columns) == ["theme", "metric", "value", "support"]
    per_theme = table[table["metric"] == "f1"].set_index("theme")["value"]
    assert set(per_theme.index) == set(phrases.THEMES + phrases.INTENT_THEMES)
    assert (per_theme > 0.95).all(), per_theme
    overall = table[table["theme"] == "all"].set_index("metric")["value"]
    assert overall["micro_f1"] > 0.97
    assert overall["exact_set_accuracy"] > 0.95

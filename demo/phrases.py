"""Phrase banks the demo company's customers and agents write with, by theme and tone."""

from __future__ import annotations

import numpy as np

THEMES = (
    "product_bugs",
    "reliability_performance",
    "support_experience",
    "pricing_billing_value",
    "onboarding_education",
    "competitors",
)

# Ticket category a theme is filed under.
TICKET_CATEGORY = {
    "product_bugs": "bug",
    "reliability_performance": "performance",
    "support_experience": "account",
    "pricing_billing_value": "billing",
    "onboarding_education": "how_to",
    "competitors": "other",
}

FEATURES = (
    "dashboard",
    "reports",
    "export",
    "mobile app",
    "integrations",
    "SSO login",
    "scheduler",
    "search",
    "API",
    "notifications",
    "user management",
    "analytics",
)
COMPETITORS = ("Acmely", "Zendrix", "Brightloop", "Helpstack", "Quorra")

_NEGATIVE = {
    "product_bugs": [
        "the {f} keeps crashing",
        "the {f} throws an error every time",
        "found another bug in the {f}",
        "{f} is broken again",
        "the {f} shows wrong numbers",
        "we lost data when the {f} failed",
        "nothing works in the {f} since the update",
        "the {f} is buggy and unreliable",
        "the {f} is not working at all",
        "this bug in the {f} is killing us",
    ],
    "reliability_performance": [
        "the app is painfully slow",
        "we had another outage this morning",
        "pages take forever to load",
        "the {f} keeps timing out",
        "the platform was down for hours",
        "performance is terrible lately",
        "everything is so slow we can't work",
        "the API is not responding again",
        "third outage this month",
        "the {f} is lagging badly",
    ],
    "support_experience": [
        "your support team took days to reply",
        "nobody answered my ticket",
        "support keeps closing my ticket without a fix",
        "the agent did not understand the problem",
        "I had to explain the issue five times",
        "still waiting for a response from support",
        "support was rude and unhelpful",
        "not happy with the support at all",
        "the chat bot is useless",
        "worst support experience ever",
    ],
    "pricing_billing_value": [
        "the price went up again",
        "we were double charged on the invoice",
        "it's not worth the money",
        "billing is confusing and wrong",
        "too expensive for what we get",
        "the renewal quote is outrageous",
        "we are paying for seats we don't use",
        "the invoice is wrong again",
        "hate the new pricing",
        "the cost keeps going up but the value doesn't",
    ],
    "onboarding_education": [
        "setting up the {f} was confusing",
        "the docs don't explain how to use the {f}",
        "onboarding was a mess",
        "nobody showed us how the {f} works",
        "the training was useless",
        "we still don't know how to configure the {f}",
        "the setup guide is outdated",
        "our team can't figure out the {f}",
        "no help getting started",
        "the tutorials are not helpful",
    ],
    "competitors": [
        "we are looking at {c}",
        "{c} offers this for half the price",
        "considering switching to {c}",
        "{c} has a better {f}",
        "our board wants us to move to {c}",
        "we got a demo from {c} last week",
        "{c} does this out of the box",
        "thinking about moving to {c}",
        "{c} is cheaper and faster",
        "evaluating {c} as a replacement",
    ],
}

_POSITIVE = {
    "product_bugs": [
        "the {f} works great",
        "love the new {f}",
        "the {f} update fixed everything",
        "the {f} is rock solid",
        "really like the {f}",
        "the {f} is exactly what we needed",
        "no bugs since the last release",
        "the new {f} is fantastic",
    ],
    "reliability_performance": [
        "the app is fast and reliable",
        "no downtime in months",
        "the {f} loads instantly",
        "performance has been excellent",
        "very stable platform",
        "the speed improvements are great",
        "it just works, always up",
        "super quick since the upgrade",
    ],
    "support_experience": [
        "support was quick and helpful",
        "the agent solved it in minutes",
        "great support team",
        "thanks for the fast answer",
        "your support is amazing",
        "the support team really cares",
        "problem solved on the first reply",
        "love how responsive support is",
    ],
    "pricing_billing_value": [
        "great value for the price",
        "worth every penny",
        "pricing is fair",
        "billing is simple and clear",
        "we save a lot of time for the cost",
        "good value for money",
        "the new plan fits us well",
        "fair price for what we get",
    ],
    "onboarding_education": [
        "onboarding was smooth",
        "the training session was great",
        "the docs are clear and helpful",
        "easy to get started",
        "setting up the {f} took five minutes",
        "the tutorials helped a lot",
        "our team learned the {f} quickly",
        "great onboarding experience",
    ],
    "competitors": [
        "much better than {c}",
        "we switched from {c} and never looked back",
        "way ahead of {c}",
        "we tried {c} but you are better",
        "better than {c} in every way",
        "happy we picked you over {c}",
        "{c} can't compete with this",
        "beats {c} easily",
    ],
}

_NEUTRAL = {
    "product_bugs": [
        "how do I filter the {f}?",
        "is there a way to export from the {f}?",
        "question about the {f} settings",
        "can the {f} show weekly totals?",
    ],
    "reliability_performance": [
        "is there a status page?",
        "when is the next maintenance window?",
        "what are the API rate limits?",
        "do you have a region in Europe?",
    ],
    "support_experience": [
        "can you update my ticket?",
        "who is my account manager?",
        "please add a colleague to this thread",
        "what are your support hours?",
    ],
    "pricing_billing_value": [
        "can I get a copy of the invoice?",
        "how do I change our plan?",
        "can we pay annually?",
        "please update our billing address",
    ],
    "onboarding_education": [
        "where can I find the docs for the {f}?",
        "is there a training video?",
        "how do I invite my team?",
        "can we book an onboarding call?",
    ],
    "competitors": [
        "do you integrate with {c}?",
        "can we import data from {c}?",
        "how do you compare to {c}?",
        "we also use {c} for some teams",
    ],
}

# Mixed feelings: praise for one thing, a complaint about another.
_MIXED_JOINERS = (", but ", " but ", ". however ", ", although ")
SHORT_POSITIVE = (
    "great",
    "love it",
    "awesome",
    "very good",
    "excellent",
    "10/10",
    "amazing product",
)
SHORT_NEUTRAL = ("meh", "ok", "fine I guess", "it's alright", "nothing special", "so-so", "average")
SHORT_NEGATIVE = ("terrible", "awful", "bad", "useless", "disappointed", "horrible", "not good")

AGENT_LINES = (
    "Thanks for reaching out, let me look into this.",
    "I have escalated this to our engineers.",
    "Could you share a screenshot?",
    "I understand, let me check your account.",
    "This should be fixed now, can you try again?",
    "I have added a note to your ticket.",
    "Let me know if there is anything else I can help with.",
    "I am sorry for the trouble.",
)
BOT_LINES = (
    "Hi! I'm the virtual assistant. How can I help today?",
    "An agent will be with you shortly.",
    "Here are some help articles that might answer your question.",
)

TONES = ("negative", "neutral", "positive")
_BANKS = {"negative": _NEGATIVE, "neutral": _NEUTRAL, "positive": _POSITIVE}


def _misspell(text: str, rng: np.random.Generator) -> str:
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    if not candidates:
        return text
    i = int(rng.choice(candidates))
    w = words[i]
    j = int(rng.integers(1, len(w) - 2))
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def build_pools(
    rng: np.random.Generator, per_template: int = 6
) -> dict[tuple[str, str], np.ndarray]:
    """Rendered sentences per (theme, tone), with slot values and a few misspellings filled in."""
    pools: dict[tuple[str, str], np.ndarray] = {}
    for tone, bank in _BANKS.items():
        for theme, templates in bank.items():
            rendered = sorted(
                {
                    template.format(f=rng.choice(FEATURES), c=rng.choice(COMPETITORS))
                    for template in templates
                    for _ in range(per_template)
                }
            )
            # About one text in twelve carries a typo, as real customer writing does.
            typos = [_misspell(text, rng) for text in rendered if rng.random() < 0.09]
            pools[(theme, tone)] = np.array(rendered + typos, dtype=object)
    return pools


def render_texts(
    themes: np.ndarray,
    tones: np.ndarray,
    second_themes: np.ndarray,
    second_tones: np.ndarray,
    pools: dict[tuple[str, str], np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """One sentence per row, or two joined ones where a second theme is given ('' for none)."""
    out = np.empty(len(themes), dtype=object)
    for (theme, tone), pool in pools.items():
        mask = (themes == theme) & (tones == tone)
        if mask.any():
            out[mask] = pool[rng.integers(0, len(pool), int(mask.sum()))]
    has_second = second_themes != ""
    if has_second.any():
        second = np.empty(int(has_second.sum()), dtype=object)
        st, so = second_themes[has_second], second_tones[has_second]
        for (theme, tone), pool in pools.items():
            mask = (st == theme) & (so == tone)
            if mask.any():
                second[mask] = pool[rng.integers(0, len(pool), int(mask.sum()))]
        joiners = np.array(_MIXED_JOINERS, dtype=object)[
            rng.integers(0, len(_MIXED_JOINERS), len(second))
        ]
        out[has_second] = out[has_second] + joiners + second
    return out

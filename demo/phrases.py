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


# --- Stated intent: what customers say before their usage shows it --------------------------
# Intent themes (text_analytics/themes.yaml, ``intent: true``). Each phrasing is
# (template, other themes the sentence is also about), the latter for the demo's text truth.
INTENT_THEMES = (
    "competitor_evaluation",
    "budget_cuts",
    "champion_left",
    "renewal_review",
    "downsizing",
)
_P = "pricing_billing_value"
_Phrasing = tuple[str, tuple[str, ...]]

# Phrasings the detector was built with: its seed terms cover them, and the demo's training
# windows carry them.
INTENT_PHRASES: dict[str, list[_Phrasing]] = {
    "competitor_evaluation": [
        ("we are evaluating another vendor", ()),
        ("we are evaluating other vendors for next year", ("competitors",)),
        ("our team is looking at alternatives", ("competitors",)),
        ("we got a demo from another vendor last week", ()),
        ("we have sent out an RFP for this", ()),
        ("we are comparing vendors this quarter", ()),
        ("we are running a proof of concept with {c}", ("competitors",)),
    ],
    "budget_cuts": [
        ("budget cuts are hitting our team", ()),
        ("our budget was cut for next year", ()),
        ("we are cutting costs across the company", ()),
        ("there is a spending freeze until further notice", ()),
        ("finance is doing a cost review of all tools", ()),
        ("we can't afford this anymore", ()),
    ],
    "champion_left": [
        ("our admin who championed this left", ()),
        ("the person who championed this tool left the company", ()),
        ("our admin left last month", ()),
        ("our executive sponsor has left", ()),
        ("we have a new admin who is still learning the tool", ()),
        ("new leadership is questioning every tool we use", ()),
    ],
    "renewal_review": [
        ("we are reviewing renewals", (_P,)),
        ("we are reviewing our renewal with finance", (_P,)),
        ("our contract is up for renewal and we are unsure", (_P,)),
        ("we need to decide whether to renew", ()),
        ("how do we cancel our subscription?", (_P,)),
        ("please send us the notice period terms", ()),
    ],
    "downsizing": [
        ("we need to reduce our seats", (_P,)),
        ("we will cut seats next quarter", (_P,)),
        ("we want fewer licenses from next month", ()),
        ("can we downgrade our plan?", (_P,)),
        ("after the layoffs the team is much smaller", ()),
        ("we are downsizing the team using this", ()),
    ],
}

# HELD OUT: never in the detector's seed terms and never in a demo's training windows (only
# after ``DemoConfig.intent_heldout_from``). Written as other customers would put it, to
# measure how the detector and the models generalise to words they were not built on.
HELDOUT_INTENT_PHRASES: dict[str, list[_Phrasing]] = {
    "competitor_evaluation": [
        ("we started a trial with {c} last week", ("competitors",)),
        ("procurement wants quotes from two other suppliers", ()),
        ("we are benchmarking you against a couple of other vendors", ("competitors",)),
        ("our team is piloting {c} alongside your tool", ("competitors",)),
        ("we have been asked to look into other platforms", ()),
        ("we're in talks with another vendor", ()),
    ],
    "budget_cuts": [
        ("our finance team froze all software spending", ()),
        ("the budget for tools got slashed this year", ()),
        ("we have been told to cut every non essential cost", ()),
        ("money is tight and every subscription is being questioned", (_P,)),
        ("our funding round fell through so we are trimming spend", ()),
        ("budgets are being cut accross the board", ()),
    ],
    "champion_left": [
        ("the person who set this up for us has left", ()),
        ("our main user quit and the rest of us barely use the system", ()),
        ("our sponsor moved to another company", ()),
        ("the manager who brought you in is gone", ()),
        ("after our admin resignd the tool has no owner", ()),
        ("we have a new head of operations who prefers other tools", ()),
    ],
    "renewal_review": [
        ("we are taking a hard look at the renewal", (_P,)),
        ("finance put our contract renewal on pause", (_P,)),
        ("please tell me how to end the contract early", ()),
        ("we might let the subscription lapse", (_P,)),
        ("we are re-evaluating whether we need this at renewal time", (_P,)),
        ("the renewal decision is still open on our side", (_P,)),
    ],
    "downsizing": [
        ("we are letting go of part of the team so we need fewer licences", ()),
        ("can we drop to ten users next month", ()),
        ("we want to trim our plan to the basic tier", (_P,)),
        ("after the redundancies we only need half the seats", (_P,)),
        ("we will be shrinking our user count", ()),
        ("redundancies mean far fewer people use this now", ()),
    ],
}

# Written after the detector's seed terms and concepts were frozen, and never tuned against:
# its recall on these is the honest estimate (the list above was looked at while building it).
BLIND_INTENT_PHRASES: dict[str, list[_Phrasing]] = {
    "competitor_evaluation": [
        ("a colleague is testing a rival product with her team", ()),
        ("we booked calls with three other software companies", ()),
        ("leadership asked for a side by side of you and your competitors", ("competitors",)),
        ("we are weighing our options for next year", ()),
    ],
    "budget_cuts": [
        ("the cfo is slashing discretionary spend", ()),
        ("we lost a big client and have to save money everywhere", ()),
        ("all purchases now need sign off because cash is short", ()),
        ("our costs have to come down by a third", ()),
    ],
    "champion_left": [
        ("the guy who ran this for us retired", ()),
        ("our account owner on our side is no longer here", ()),
        ("since our ops lead departed nobody logs in", ()),
        ("the new director has her own favourite tools", ()),
    ],
    "renewal_review": [
        ("we have not decided if we will extend the agreement", ()),
        ("our legal team is looking at the termination clause", ()),
        ("finance wants to talk about the renewal before signing anything", (_P,)),
        ("is there a penalty if we stop the contract early", ()),
    ],
    "downsizing": [
        ("half our staff were made redundant", ()),
        ("please lower our seat count to 20", (_P,)),
        ("we are closing the emea office so fewer people will need access", ()),
        ("we only need the smallest plan now", (_P,)),
    ],
}
for _theme, _blind in BLIND_INTENT_PHRASES.items():
    HELDOUT_INTENT_PHRASES[_theme] = HELDOUT_INTENT_PHRASES[_theme] + _blind

# Denials: intent words, no intent. A detector must not fire on these.
DENIED_INTENT: list[_Phrasing] = [
    ("we are not evaluating other vendors", ("competitors",)),
    ("no budget cuts on our side this year", ()),
    ("we have no plans to reduce seats", (_P,)),
    ("we are not reviewing the renewal, all good", (_P,)),
    ("our admin hasn't left, she loves the tool", ()),
    ("we are not looking at alternatives", ("competitors",)),
    ("we won't cut seats, the team is growing", (_P,)),
    ("never considered cancelling our subscription", (_P,)),
]


def render_intent(
    themes: np.ndarray, heldout: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One intent sentence per row (``themes`` an intent theme id, or '' for a denial) and its
    '|'-joined true themes; ``heldout`` rows draw from the held-out phrasings."""
    text = np.empty(len(themes), dtype=object)
    truth = np.empty(len(themes), dtype=object)
    picks = rng.random(len(themes))
    names = np.array(COMPETITORS, dtype=object)
    competitors = names[rng.integers(0, len(names), len(themes))]
    for i, theme in enumerate(themes):
        if theme == "":
            bank, own = DENIED_INTENT, ()
        else:
            bank = (HELDOUT_INTENT_PHRASES if heldout[i] else INTENT_PHRASES)[theme]
            own = (theme,)
        template, extra = bank[int(picks[i] * len(bank))]
        text[i] = template.format(c=competitors[i])
        truth[i] = "|".join(sorted(set(own) | set(extra), key=_theme_order))
    return text, truth


def _theme_order(theme: str) -> int:
    ordered = THEMES + INTENT_THEMES
    return ordered.index(theme) if theme in ordered else len(ordered)

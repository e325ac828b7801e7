"""Message-level signals: customer-written texts taken from the contract tables, scored, themed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.privacy import mask_personal_data
from features.validation import to_utc_naive
from text_analytics.sentiment import SatisfactionModel
from text_analytics.themes import Taxonomy, code_themes, load_taxonomy
from text_analytics.tokens import map_unique, to_text_list

THEME_PREFIX = "theme_"
NEGATIVE_THRESHOLD = 0.5
KEY_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # chat keys: conversation_id@sent_at, as in text_truth
TEXT_COLUMNS = ["customer_id", "timestamp", "source", "key", "text"]


def find_theme_columns(frame: pd.DataFrame) -> list[str]:
    """The ``theme_<id>`` columns of a scored frame, in order."""
    return [c for c in frame.columns if str(c).startswith(THEME_PREFIX)]


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (the contract's rule), keeping the series' index."""
    series = pd.Series(values)
    # to_utc_naive loses mixed zoned/naive values on a gappy index (pandas 2.3): parse 0..n-1.
    parsed = to_utc_naive(series.reset_index(drop=True))
    return pd.Series(parsed.to_numpy(), index=series.index, name=series.name)


def _text(series: pd.Series) -> pd.Series:
    return pd.Series(to_text_list(series), index=series.index, dtype=object).str.strip()


def _texts_of_chats(chats: pd.DataFrame) -> pd.DataFrame:
    if "author" in chats.columns:
        author = chats["author"].astype("string").str.strip().str.lower()
        chats = chats[(author == "customer").fillna(False).to_numpy()]
    sent = parse_timestamps(chats["sent_at"])
    conversation = (
        _text(chats["conversation_id"])
        if "conversation_id" in chats
        else _text(chats["customer_id"])
    )
    return pd.DataFrame(
        {
            "customer_id": _text(chats["customer_id"]),
            "timestamp": sent,
            "source": "chats",
            "key": conversation + "@" + sent.dt.strftime(KEY_TIME_FORMAT).fillna(""),
            "text": _text(chats["text"]),
        }
    )


def _texts_of_tickets(tickets: pd.DataFrame) -> pd.DataFrame:
    empty = pd.Series("", index=tickets.index, dtype=object)
    subject = _text(tickets["subject"]) if "subject" in tickets else empty
    body = _text(tickets["body"]) if "body" in tickets else empty
    # Exports often repeat the subject as the body's first line; say it once.
    repeated = pd.Series(
        [bool(s) and b.startswith(s) for s, b in zip(subject, body, strict=True)],
        index=tickets.index,
    )
    joined = np.where(
        repeated | (subject == ""),
        body,
        np.where(body == "", subject, subject + ". " + body),
    )
    key = _text(tickets["ticket_id"]) if "ticket_id" in tickets else empty
    return pd.DataFrame(
        {
            "customer_id": _text(tickets["customer_id"]),
            "timestamp": parse_timestamps(tickets["created_at"]),
            "source": "tickets",
            "key": key,
            "text": joined,
        }
    )


def _texts_of_nps(nps: pd.DataFrame) -> pd.DataFrame:
    responded = parse_timestamps(nps["responded_at"])
    if "response_id" in nps:
        key = _text(nps["response_id"])
    else:
        key = _text(nps["customer_id"]) + "@" + responded.dt.strftime(KEY_TIME_FORMAT).fillna("")
    return pd.DataFrame(
        {
            "customer_id": _text(nps["customer_id"]),
            "timestamp": responded,
            "source": "nps_responses",
            "key": key,
            "text": _text(nps["comment"]),
        }
    )


def extract_customer_texts(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every customer-written text in the contract tables, as one long frame.

    Columns customer_id, timestamp, source (chats / tickets / nps_responses), key (the id the
    demo's ``text_truth`` uses: ticket_id, ``conversation_id@sent_at``, response_id) and text:
    customer chat messages (author == 'customer'), ticket subject + body, NPS comments. Empty
    texts are left out; absent tables or text columns are skipped. The text is as written,
    personal data included, for a model to read: ``score_messages`` masks it in its output.
    """
    parts = []
    if "chats" in tables and {"sent_at", "text"} <= set(tables["chats"].columns):
        parts.append(_texts_of_chats(tables["chats"]))
    tickets = tables.get("tickets")
    if tickets is not None and {"subject", "body"} & set(tickets.columns):
        parts.append(_texts_of_tickets(tickets))
    nps = tables.get("nps_responses")
    if nps is not None and "comment" in nps.columns:
        parts.append(_texts_of_nps(nps))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TEXT_COLUMNS})
    texts = pd.concat(parts, ignore_index=True)
    texts = texts[texts["text"] != ""]
    return texts.sort_values(["timestamp", "source", "key"], kind="stable").reset_index(drop=True)


MAX_MESSAGE_CHARS = 5_000
_LAST_SPACE = re.compile(r"\s\S*\Z")


def cap_text(text: str, max_chars: int) -> str:
    """The first ``max_chars`` characters, cut at the last blank before the limit (when there
    is one in the last tenth), so no word, e-mail address or phone number is cut in two."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    tail = _LAST_SPACE.search(head, max(0, max_chars - max_chars // 10))
    return head[: tail.start()] if tail else head


def cap_texts(texts: pd.Series, max_chars: int) -> tuple[pd.Series, int]:
    """Texts capped at ``max_chars`` characters (see ``cap_text``), and how many were longer."""
    values = to_text_list(texts)
    long = [i for i, t in enumerate(values) if len(t) > max_chars]
    for i in long:
        values[i] = cap_text(values[i], max_chars)
    return pd.Series(values, index=texts.index, dtype=object), len(long)


def mask_texts(texts: pd.Series) -> pd.Series:
    """E-mail addresses and phone numbers replaced by placeholders, each distinct text once."""
    masked = map_unique(to_text_list(texts), lambda unique: [mask_personal_data(t) for t in unique])
    return pd.Series(masked, index=texts.index, dtype=object)


def score_messages(
    frame: pd.DataFrame,
    text_column: str,
    model: SatisfactionModel,
    taxonomy: Taxonomy | None = None,
    threshold: float = NEGATIVE_THRESHOLD,
    mask: bool = True,
    max_chars: int = MAX_MESSAGE_CHARS,
) -> pd.DataFrame:
    """The frame with text signals added, one row per input row.

    Only the first ``max_chars`` characters of a text are scored (and returned): a 50 MB
    pasted log is not a message, and the cap bounds the time and memory one text can take.
    ``out.attrs["capped_messages"]`` says how many texts were longer.

    ``text_score`` (expected 0-10 score), ``p_negative`` (probability the author is a
    detractor), ``negative`` (p_negative >= threshold) and a boolean ``theme_<id>`` per theme.
    Rows without text get NaN scores, negative False and no theme. With ``mask`` (default) the
    text column comes back with e-mail addresses and phone numbers masked, and only the masked
    text is scored, so nothing personal travels further.
    """
    taxonomy = taxonomy or load_taxonomy()
    out = frame.copy()
    raw, capped = cap_texts(frame[text_column], max_chars)
    texts = mask_texts(raw) if mask else raw
    predicted = model.predict(texts)
    out["text_score"] = predicted["text_score"].to_numpy()
    out["p_negative"] = predicted["p_negative"].to_numpy()
    out["negative"] = (predicted["p_negative"] >= threshold).fillna(False).to_numpy(dtype=bool)
    coded = code_themes(texts, taxonomy)
    for theme_id in taxonomy.ids:
        out[THEME_PREFIX + theme_id] = coded[theme_id].to_numpy()
    if mask or capped:
        out[text_column] = texts.where(frame[text_column].notna(), None)
    out.attrs["capped_messages"] = capped
    return out


@dataclass
class TextScorer:
    """The fitted text model and taxonomy a trained bundle carries, to score customer texts
    the same way at training, materialization and batch-scoring time."""

    model: SatisfactionModel
    taxonomy: Taxonomy
    threshold: float = NEGATIVE_THRESHOLD
    # Fixed at training (text.max_message_chars) so a text is scored the same way everywhere.
    max_chars: int = MAX_MESSAGE_CHARS

    @property
    def labels(self) -> dict[str, str]:
        return self.taxonomy.labels

    def describe(self) -> str:
        return self.model.describe()

    def signals(self, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        """One row per customer chat message and ticket: when, its score, negative or not,
        its themes. The text itself is not kept: features need only the signals.

        NPS comments are left out. Their survey score is a feature already, and the text model
        learned from those very comments: its scores of them would be in-sample in training
        and out-of-sample at scoring time, so a model would trust them more than they deserve.
        """
        texts = extract_customer_texts({k: v for k, v in tables.items() if k != "nps_responses"})
        scored = self.score(texts, "text")
        out = scored.drop(columns=["text", "key"]).reset_index(drop=True)
        out.attrs["capped_messages"] = scored.attrs.get("capped_messages", 0)
        return out

    def score(self, frame: pd.DataFrame, text_column: str) -> pd.DataFrame:
        """``score_messages`` with this scorer's model, taxonomy, threshold and cap."""
        return score_messages(
            frame,
            text_column,
            self.model,
            self.taxonomy,
            self.threshold,
            max_chars=getattr(self, "max_chars", MAX_MESSAGE_CHARS),  # older pickles: default
        )

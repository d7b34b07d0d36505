"""What a buyer's free text means: an intent classifier behind one small interface.

The default, `KeywordClassifier`, is transparent on purpose: it is "trained" by counting which intents'
phrases (data/phrases.tsv) contain each feature (Chinese characters and character pairs, English word stems
and word pairs), so every decision can be explained feature by feature (`explain`). A language model can take
its place later through `REFUNDCHAT_ASSISTANT_CLASSIFIER` (see `LanguageModelClassifier`); none is used by
default and nothing here needs the network.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

DATA_DIR = Path(__file__).resolve().parent / "data"
PHRASES = DATA_DIR / "phrases.tsv"

# The problem types of the dialog: the values of tickets.models.RefundReason.
PROBLEM_INTENTS = (
    "wrong_size",
    "colour_differs",
    "quality_defect",
    "damaged_in_transit",
    "missing_item",
    "not_received",
    "wrong_item",
    "changed_mind",
    "other",
)
POLICY_INTENTS = ("ask_refund_time", "ask_return_shipping", "ask_no_reason", "ask_excluded", "ask_return_address")
DIALOG_INTENTS = ("yes", "other_order", "human")
INTENTS = PROBLEM_INTENTS + POLICY_INTENTS + DIALOG_INTENTS
UNKNOWN = "unknown"

_CJK = re.compile(r"[\u3400-\u9fff]+")
_WORD = re.compile(r"[a-z0-9']+")
_STOP_WORDS = frozenset(
    {"a", "an", "the", "i", "my", "me", "it", "is", "was", "are", "be", "to", "of", "for", "and", "or", "this"}
    | {"that", "with", "in", "on", "at", "so", "im", "i'm", "its", "it's", "please", "hi", "hello"}
)


@dataclass(frozen=True)
class Prediction:
    intent: str  # one of INTENTS, or UNKNOWN
    confidence: float  # 0..1


class IntentClassifier(Protocol):
    def classify(self, text: str) -> Prediction: ...


def normalise(text: str) -> str:
    # NFKC folds full-width letters and digits (ｓｉｚｅ, ７天) into their usual forms.
    return unicodedata.normalize("NFKC", text).lower().strip()


def language_of(text: str) -> str | None:
    """zh-hans when the text has Chinese characters, en when it has Latin letters, else None (emoji, digits)."""
    if _CJK.search(text):
        return "zh-hans"
    if re.search(r"[A-Za-z]", text):
        return "en"
    return None


def _stem(word: str) -> str:
    for suffix in ("'s", "ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def features(text: str) -> set[str]:
    """Chinese characters and character pairs; English word stems (no stop words) and word pairs."""
    text = normalise(text)
    found: set[str] = set()
    for run in _CJK.findall(text):
        found.update(run)
        found.update(run[i : i + 2] for i in range(len(run) - 1))
    words = [_stem(word) for word in _WORD.findall(text)]
    found.update(word for word in words if word not in _STOP_WORDS)
    found.update(f"{a} {b}" for a, b in pairwise(words))
    return found


def read_labelled(path: Path) -> list[tuple[str, str]]:
    """(label, text) rows of a TSV file; blank lines and # comments are skipped."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, text = line.split("\t", 1)
        rows.append((label.strip(), text.strip()))
    return rows


class KeywordClassifier:
    """Scores each intent by the features of the text that its phrases have, weighted by how specific they are.

    score(intent) = Σ over the text's known features f of share(f, intent) × specificity(f), where share is the
    part of f's occurrences that are in the intent's phrases and specificity = log(#intents / #intents having f).
    A whole phrase found in the text adds PHRASE_BONUS. Below MIN_SCORE the text is not understood.
    """

    MIN_SCORE = 1.2
    PHRASE_BONUS = 1.5

    def __init__(self, phrases: Iterable[tuple[str, str]] | None = None) -> None:
        rows = list(phrases) if phrases is not None else read_labelled(PHRASES)
        unknown = {label for label, _text in rows} - set(INTENTS)
        if unknown:
            raise ValueError(f"phrases with unknown intents: {sorted(unknown)}")
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for label, text in rows:
            for feature in features(text):
                counts[feature][label] += 1
        n_intents = len(INTENTS)
        self.weights: dict[str, dict[str, float]] = {}
        for feature, by_intent in counts.items():
            total = sum(by_intent.values())
            specificity = math.log(n_intents / len(by_intent))
            self.weights[feature] = {label: n / total * specificity for label, n in by_intent.items()}
        self.phrases = [(label, normalise(text)) for label, text in rows if len(normalise(text)) >= 2]

    def scores(self, text: str) -> dict[str, float]:
        scores: dict[str, float] = defaultdict(float)
        for feature in features(text):
            for label, weight in self.weights.get(feature, {}).items():
                scores[label] += weight
        normalised = normalise(text)
        for label, phrase in self.phrases:
            if _contains_phrase(normalised, phrase):
                scores[label] += self.PHRASE_BONUS
        return dict(scores)

    def classify(self, text: str) -> Prediction:
        scores = self.scores(text)
        if not scores:
            return Prediction(UNKNOWN, 0.0)
        intent, best = max(scores.items(), key=lambda item: (item[1], item[0]))
        if best < self.MIN_SCORE:
            return Prediction(UNKNOWN, 0.0)
        positive = sum(score for score in scores.values() if score > 0)
        return Prediction(intent, round(best / positive, 3))

    def explain(self, text: str) -> list[tuple[str, str, float]]:
        """(feature, intent, weight) of every known feature of the text, heaviest first."""
        rows = [
            (feature, label, weight)
            for feature in features(text)
            for label, weight in self.weights.get(feature, {}).items()
        ]
        return sorted(rows, key=lambda row: -row[2])


def _contains_phrase(text: str, phrase: str) -> bool:
    if _CJK.search(phrase):
        return phrase in text
    # English phrases match whole words only ("no" is not in "know").
    return re.search(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", text) is not None


class LanguageModelClassifier:
    """The slot for a language model: `complete(prompt) -> str` answers with one intent name.

    Not used by default. A deployment that has a model wraps it in a subclass whose __init__ passes its
    `complete` and names the subclass in REFUNDCHAT_ASSISTANT_CLASSIFIER. Anything the model answers that is
    not an intent falls back to the keyword model, so a model can only add understanding, never lose it.
    """

    def __init__(self, complete: Callable[[str], str], fallback: IntentClassifier | None = None) -> None:
        self.complete = complete
        self.fallback = fallback or KeywordClassifier()

    def prompt(self, text: str) -> str:
        return (
            "A buyer wrote to a refund assistant. Answer with exactly one of these labels, nothing else: "
            + ", ".join((*INTENTS, UNKNOWN))
            + f".\nBuyer: {text}\nLabel:"
        )

    def classify(self, text: str) -> Prediction:
        answer = self.complete(self.prompt(text)).strip().lower()
        if answer in INTENTS:
            return Prediction(answer, 1.0)
        return self.fallback.classify(text)


@cache
def _load(path: str) -> IntentClassifier:
    classifier: IntentClassifier = import_string(path)()
    return classifier


def get_classifier() -> IntentClassifier:
    """The configured classifier, built once per process."""
    return _load(settings.REFUNDCHAT_ASSISTANT_CLASSIFIER)

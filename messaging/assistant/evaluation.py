"""How well the intent classifier understands buyers: accuracy and confusion matrix on data/eval.tsv."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from messaging.assistant.classifier import DATA_DIR, INTENTS, UNKNOWN, IntentClassifier, read_labelled

EVAL_SET = DATA_DIR / "eval.tsv"
LABELS = (*INTENTS, UNKNOWN)


@dataclass
class Evaluation:
    total: int = 0
    correct: int = 0
    # (expected, predicted) -> count
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    mistakes: list[tuple[str, str, str]] = field(default_factory=list)  # (text, expected, predicted)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def evaluate(classifier: IntentClassifier, path: Path = EVAL_SET) -> Evaluation:
    result = Evaluation()
    for expected, text in read_labelled(path):
        predicted = classifier.classify(text).intent
        result.total += 1
        result.confusion[expected, predicted] += 1
        if predicted == expected:
            result.correct += 1
        else:
            result.mistakes.append((text, expected, predicted))
    return result


def confusion_table(result: Evaluation) -> str:
    """The matrix as text: a numbered row per expected label, a column per predicted label (by row number);
    only labels that occur."""
    used = [label for label in LABELS if any(label in pair for pair in result.confusion)]
    width = max(len(label) for label in used) + 4
    lines = [" " * width + "".join(f"{n:>4}" for n in range(1, len(used) + 1))]
    for n, expected in enumerate(used, start=1):
        cells = "".join(f"{result.confusion[expected, predicted] or '.':>4}" for predicted in used)
        lines.append(f"{n:>2} {expected:<{width - 3}}{cells}")
    return "\n".join(lines)

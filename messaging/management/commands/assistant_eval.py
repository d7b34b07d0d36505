"""Print the triage assistant's intent classifier accuracy and confusion matrix on its evaluation set."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from messaging.assistant.classifier import get_classifier
from messaging.assistant.evaluation import EVAL_SET, confusion_table, evaluate


class Command(BaseCommand):
    help = "Accuracy and confusion matrix of the assistant's intent classifier on messaging/assistant/data/eval.tsv."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mistakes", action="store_true", help="also list every utterance it got wrong")

    def handle(self, *args: Any, **options: Any) -> None:
        classifier = get_classifier()
        result = evaluate(classifier)
        self.stdout.write(f"classifier: {type(classifier).__module__}.{type(classifier).__qualname__}")
        self.stdout.write(f"evaluation set: {EVAL_SET.name}, {result.total} utterances")
        self.stdout.write(f"accuracy: {result.accuracy * 100:.1f} % ({result.correct}/{result.total})")
        self.stdout.write("confusion matrix (rows: expected, columns: predicted):")
        self.stdout.write(confusion_table(result))
        if options["mistakes"]:
            for text, expected, predicted in result.mistakes:
                self.stdout.write(f"  {expected} -> {predicted}: {text}")

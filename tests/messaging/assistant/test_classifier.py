"""The intent classifier: its interface, the keyword model, its recorded accuracy, and the language-model slot."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from messaging.assistant import classifier as classifier_module
from messaging.assistant.classifier import (
    INTENTS,
    PHRASES,
    UNKNOWN,
    KeywordClassifier,
    LanguageModelClassifier,
    Prediction,
    features,
    get_classifier,
    language_of,
    read_labelled,
)
from messaging.assistant.evaluation import EVAL_SET, evaluate

BENCHMARKS = Path(__file__).resolve().parents[3] / "docs" / "benchmarks.md"


def recorded_accuracy() -> float:
    """The figure under "## Triage classifier" in docs/benchmarks.md."""
    section = BENCHMARKS.read_text(encoding="utf-8").split("## Triage classifier", 1)[1]
    match = re.search(r"Recorded accuracy: \*\*([\d.]+) %\*\*", section)
    assert match, "docs/benchmarks.md has no recorded accuracy under “Triage classifier”"
    return float(match.group(1))


def test_accuracy_holds() -> None:
    result = evaluate(KeywordClassifier())
    assert result.accuracy * 100 >= recorded_accuracy() - 2, result.mistakes


def test_the_evaluation_set_is_large_labelled_and_bilingual() -> None:
    rows = read_labelled(EVAL_SET)
    assert len(rows) >= 150
    assert {label for label, _text in rows} <= {*INTENTS, UNKNOWN}
    assert {label for label, _text in rows} >= set(INTENTS)
    languages = [language_of(text) for _label, text in rows]
    assert languages.count("zh-hans") >= 60
    assert languages.count("en") >= 60
    # Held out: only short answers buyers really send word for word (是的, yes, 转人工) are also training phrases.
    phrases = {text.lower() for _label, text in read_labelled(PHRASES)}
    shared = [text for _label, text in rows if text.lower() in phrases]
    assert len(shared) <= 20, shared
    assert all(len(text) <= 22 for text in shared), shared


def test_every_training_phrase_is_known_to_the_model() -> None:
    model = KeywordClassifier()
    wrong = [(label, text) for label, text in read_labelled(PHRASES) if model.classify(text).intent != label]
    # A few short phrases are shared between intents by nature ("不对"); nearly all must come back as trained.
    assert len(wrong) <= 10, wrong


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("衣服太小了穿不下", "wrong_size"),
        ("ｔｏｏ ｓｍａｌｌ", "wrong_size"),  # full-width input
        ("The box arrived crushed", "damaged_in_transit"),
        ("我要转人工", "human"),
        ("退货寄到哪里？", "ask_return_address"),
        ("asdf", UNKNOWN),
        ("🙂", UNKNOWN),
    ],
)
def test_classify(text: str, intent: str) -> None:
    prediction = KeywordClassifier().classify(text)
    assert prediction.intent == intent
    assert 0 <= prediction.confidence <= 1


def test_the_model_explains_itself() -> None:
    rows = KeywordClassifier().explain("拉链坏了")
    assert rows
    assert rows[0][1] == "quality_defect"
    assert {"拉", "拉链", "链坏"} <= features("拉链坏了")
    assert "know" in features("I know")
    assert "no" not in features("I know")


def test_english_phrases_match_whole_words_only() -> None:
    model = KeywordClassifier([("other_order", "no"), ("yes", "yes")])
    assert model.scores("I know") == {}


def test_unknown_intents_in_the_phrase_list_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown intents"):
        KeywordClassifier([("refund_please", "refund")])


def test_the_language_model_slot_is_off_by_default_and_falls_back() -> None:
    assert isinstance(get_classifier(), KeywordClassifier)
    prompts: list[str] = []

    def fake_model(prompt: str) -> str:
        prompts.append(prompt)
        return "wrong_item" if "收到" in prompt else "I am not sure"

    model = LanguageModelClassifier(fake_model)
    assert model.classify("收到的东西不对") == Prediction("wrong_item", 1.0)
    assert model.classify("too small") == KeywordClassifier().classify("too small")  # fallback
    assert "wrong_item" in prompts[0]
    assert "收到的东西不对" in prompts[0]


def test_the_classifier_is_chosen_by_setting(settings: Any) -> None:
    classifier_module._load.cache_clear()
    try:
        settings.REFUNDCHAT_ASSISTANT_CLASSIFIER = "tests.messaging.assistant.test_classifier.AlwaysYes"
        assert get_classifier().classify("whatever").intent == "yes"
    finally:
        classifier_module._load.cache_clear()


class AlwaysYes:
    def classify(self, text: str) -> Prediction:
        return Prediction("yes", 1.0)


def test_the_command_prints_accuracy_and_confusion_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("assistant_eval")
    out = capsys.readouterr().out
    assert re.search(r"accuracy: [\d.]+ % \(\d+/\d+\)", out)
    assert "confusion matrix" in out
    assert "damaged_in_transit" in out

"""The anger signal that sends a buyer to a person at once."""

from __future__ import annotations

import pytest

from messaging.assistant.sentiment import anger_score, is_angry


@pytest.mark.parametrize(
    "text",
    [
        "你们这是什么垃圾店",
        "骗子！退钱",
        "太差了，我要投诉！！",
        "气死我了",
        "This is a scam",
        "worst shop ever",
        "This is RIDICULOUS and USELESS",
        "terrible service, I will complain!!!",
    ],
)
def test_angry(text: str) -> None:
    assert is_angry(text), anger_score(text)


@pytest.mark.parametrize(
    "text",
    [
        "衣服太小了",
        "质量太差",  # one complaint word is a complaint, not anger
        "箱子压坏了，杯子碎了",
        "The box arrived crushed",
        "poor quality, the zipper broke",
        "Hi! Thanks!",
        "I'm not sure about this scampi recipe",  # whole words only
        "OK",
    ],
)
def test_not_angry(text: str) -> None:
    assert not is_angry(text), anger_score(text)


def test_shouting_adds_to_a_complaint() -> None:
    assert anger_score("太差了") == 1
    assert anger_score("太差了！！！") == 2

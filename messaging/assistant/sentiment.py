"""A simple anger signal: an angry buyer goes to a human at once rather than through more questions.

Deliberately plain and tested (tests/messaging/assistant/test_sentiment.py): strong words count 2, milder
complaint words 1, shouting (!!!, ？！, a run of capitals) 1. A score of 2 or more is angry.
"""

from __future__ import annotations

import re

from messaging.assistant.classifier import normalise

STRONG = (
    "垃圾", "骗子", "骗人", "气死", "滚", "恶心", "他妈", "妈的", "坑人", "黑店", "举报", "投诉你们", "12315", "去死",
    "scam", "fraud", "scammer", "furious", "disgusting", "worst", "wtf", "fuck", "shit", "rip-off", "ripoff",
    "sue you", "report you",
)  # fmt: skip
MILD = (
    "投诉", "太差", "无语", "差评", "生气", "离谱", "什么破", "搞什么", "忍无可忍", "太过分", "烂",
    "angry", "ridiculous", "terrible", "awful", "useless", "unacceptable", "pathetic", "annoyed", "complain",
    "bad review", "joke",
)  # fmt: skip
THRESHOLD = 2

_SHOUT = re.compile(r"[!！]{2,}|[?？][!！]|[!！][?？]")
_CAPS = re.compile(r"\b[A-Z]{4,}\b")


def anger_score(text: str) -> int:
    lowered = normalise(text)
    score = sum(2 for word in STRONG if _has(lowered, word)) + sum(1 for word in MILD if _has(lowered, word))
    if _SHOUT.search(text):
        score += 1
    if len(_CAPS.findall(text)) >= 2:
        score += 1
    return score


def is_angry(text: str) -> bool:
    return anger_score(text) >= THRESHOLD


def _has(text: str, word: str) -> bool:
    if word.isascii():
        return re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", text) is not None
    return word in text

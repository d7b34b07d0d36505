"""Bank card and Chinese resident ID numbers in chat text: found, and masked before a message is stored.

static/js/pii.js mirrors these rules (the buyer is warned before sending); both are checked against the
same vectors, tests/messaging/pii_vectors.json. Order numbers, tracking numbers and phone numbers must not
be taken for either:

- a card is 12–19 digits (single spaces or dashes between groups allowed), passes the Luhn check and starts
  like a payment card (CARD_PREFIXES); an 18-digit number starting with a date (20YYMMDD…, the shop's order
  numbers) is an order number;
- a resident ID is 17 digits and a check character (ISO 7064 MOD 11-2) with a province code and a birth date
  that exists, no later than today;
- a number glued to letters (SF1234567890123, JD…, YT…) is a tracking number, never either.

Masking keeps the first 6 and the last 4 digits: 622202******0128.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.utils import timezone

CARD = "card"
RESIDENT_ID = "resident_id"

# Runs of digits with single spaces or dashes between them, not glued to letters or other digits.
_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9](?:[ \-]?[0-9])*(?![0-9A-Za-z])")
_ID = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_SEPARATORS = re.compile(r"[ \-]+")
# (prefix pattern, allowed lengths): the card schemes issued to Chinese and international buyers.
CARD_PREFIXES: tuple[tuple[re.Pattern[str], frozenset[int]], ...] = (
    (re.compile(r"^62"), frozenset(range(16, 20))),  # UnionPay
    (re.compile(r"^4"), frozenset({16, 19})),  # Visa (13-digit cards are no longer issued)
    (re.compile(r"^(5[1-5]|222[1-9]|22[3-9]|2[3-6]|27[01]|2720)"), frozenset({16})),  # Mastercard
    (re.compile(r"^3[47]"), frozenset({15})),  # American Express
    (re.compile(r"^35(2[89]|[3-8])"), frozenset(range(16, 20))),  # JCB
    (re.compile(r"^(30[0-5]|36|38)"), frozenset(range(14, 20))),  # Diners Club
    (re.compile(r"^(6011|64[4-9]|65)"), frozenset(range(16, 20))),  # Discover
    (re.compile(r"^(60|9558)"), frozenset(range(16, 20))),  # domestic bank cards (e.g. 6013 BOC, 9558 ICBC)
    (re.compile(r"^(50|5[6-8]|6304|6759|676[1-3])"), frozenset(range(12, 20))),  # Maestro: the 12-digit cards
)
# The shop's order numbers: 20YYMMDD and ten more digits.
_ORDER_NO = re.compile(r"^20[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{10}$")
# Province codes of GB/T 2260 (the first two digits of a resident ID).
_PROVINCES = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43"}
    | {"44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82", "83", "91"}
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
MIN_DIGITS = 12


@dataclass(frozen=True)
class Found:
    kind: str
    start: int
    end: int
    masked: str


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    if not 12 <= len(digits) <= 19 or _ORDER_NO.match(digits) or not luhn_valid(digits):
        return False
    return any(prefix.match(digits) and len(digits) in lengths for prefix, lengths in CARD_PREFIXES)


def is_resident_id(value: str, *, today: date | None = None) -> bool:
    value = value.upper()
    if len(value) != 18 or not value[:17].isdigit() or value[:2] not in _PROVINCES:
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if not date(1900, 1, 1) <= born <= (today or timezone.localdate()):
        return False
    check = sum(int(digit) * weight for digit, weight in zip(value[:17], _ID_WEIGHTS, strict=True)) % 11
    return _ID_CHECK[check] == value[17]


def mask_digits(value: str) -> str:
    """First 6 and last 4 characters kept, the rest as '*': 622202******0128."""
    compact = _SEPARATORS.sub("", value)
    return compact[:6] + "*" * (len(compact) - 10) + compact[-4:]


def find_sensitive(text: str, *, today: date | None = None) -> list[Found]:
    """Card and resident ID numbers in `text`, in order, with their masked forms."""
    # The fast path: most messages have too few digits to hold either (str.isdigit runs in C).
    if len(text) < MIN_DIGITS or sum(map(str.isdigit, text)) < MIN_DIGITS:
        return []
    found: list[Found] = []
    for match in _ID.finditer(text):
        if is_resident_id(match.group(), today=today):
            found.append(Found(RESIDENT_ID, match.start(), match.end(), mask_digits(match.group())))
    taken = [(item.start, item.end) for item in found]
    for match in _RUN.finditer(text):
        for start, end in _card_candidates(match):
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            digits = _SEPARATORS.sub("", text[start:end])
            if is_card_number(digits):
                found.append(Found(CARD, start, end, mask_digits(digits)))
    return sorted(found, key=lambda item: item.start)


def _card_candidates(match: re.Match[str]) -> list[tuple[int, int]]:
    """The whole run, or, for a run too long to be one number, each of its space-separated parts."""
    digits = sum(map(str.isdigit, match.group()))
    if digits <= 19:
        return [match.span()]
    return [
        (match.start() + part.start(), match.start() + part.end())
        for part in re.finditer(r"[0-9](?:-?[0-9])*", match.group())
    ]


def mask_sensitive(text: str, *, today: date | None = None) -> str:
    """`text` with every card and resident ID number replaced by its masked form."""
    found = find_sensitive(text, today=today)
    if not found:
        return text
    pieces: list[str] = []
    position = 0
    for item in found:
        pieces.append(text[position : item.start])
        pieces.append(item.masked)
        position = item.end
    pieces.append(text[position:])
    return "".join(pieces)

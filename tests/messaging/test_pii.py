"""Card and resident ID numbers in chat (messaging/pii.py, static/js/pii.js): found, masked before storing,
and never confused with order, tracking or phone numbers."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging import pii, services
from messaging.models import Message

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests/messaging/pii_vectors.json").read_text())["vectors"]
CARD = "6228480012345671"
RESIDENT_ID = "11010519491231002X"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["text"] for v in VECTORS])
def test_server_rules_follow_the_shared_vectors(vector: dict[str, Any]) -> None:
    assert [found.kind for found in pii.find_sensitive(vector["text"])] == vector["kinds"]
    assert pii.mask_sensitive(vector["text"]) == vector["masked"]


def test_browser_rules_follow_the_same_vectors() -> None:
    """static/js/pii.js, run by node on the same file: the warning and the server agree."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed to check static/js/pii.js against the shared vectors")
    script = (
        "const pii = require(process.argv[1]); const v = require(process.argv[2]).vectors;"
        "process.stdout.write(JSON.stringify(v.map(x => ({kinds: pii.find(x.text).map(f => f.kind),"
        " masked: pii.mask(x.text)}))));"
    )
    result = subprocess.run(
        [node, "-e", script, str(ROOT / "static/js/pii.js"), str(ROOT / "tests/messaging/pii_vectors.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(result.stdout)
    assert got == [{"kinds": v["kinds"], "masked": v["masked"]} for v in VECTORS]


@pytest.mark.parametrize(
    "number",
    ["6228480012345671", "4111111111111111", "6222021234567890128", "378282246310005", "501234567896"],
)
def test_valid_cards_of_each_length_are_found(number: str) -> None:
    assert pii.is_card_number(number)


@pytest.mark.parametrize(
    "number",
    [
        "13812345678",  # mobile
        "202609070000050001",  # order number
        "202609070000050005",  # order number that happens to pass Luhn
        "75312345678907",  # ZTO tracking, Luhn-valid
        "1234567890123",  # no card prefix
        "62284800123",  # too short
        "62284800123456789012",  # too long
    ],
)
def test_near_misses_are_not_cards(number: str) -> None:
    assert not pii.is_card_number(number)


def test_resident_id_checks_digit_date_and_province() -> None:
    assert pii.is_resident_id(RESIDENT_ID)
    assert pii.is_resident_id(RESIDENT_ID.lower())
    assert not pii.is_resident_id("110105194912310021")  # check digit
    assert not pii.is_resident_id("110105194902301234")  # 30 February
    # Born tomorrow: not yet.
    assert pii.is_resident_id("440308199901011234", today=date(1999, 1, 1))
    assert not pii.is_resident_id("440308199901011234", today=date(1998, 12, 31))


def test_messages_with_few_digits_skip_the_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot path pays one C-level digit count, not a regex, for ordinary messages."""

    class Exploding:
        def finditer(self, text: str) -> Any:
            raise AssertionError("regex ran for a message with few digits")

    monkeypatch.setattr(pii, "_RUN", Exploding())
    monkeypatch.setattr(pii, "_ID", Exploding())
    assert (
        pii.mask_sensitive("退款什么时候到账？订单金额 129.00 元，共 2 件")
        == "退款什么时候到账？订单金额 129.00 元，共 2 件"
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("store_path")
def test_a_card_sent_anyway_is_stored_and_broadcast_masked(
    claimed_ticket: Any, django_capture_on_commit_callbacks: Any, published: list[tuple[str, dict[str, Any]]]
) -> None:
    ticket, _agent = claimed_ticket
    with django_capture_on_commit_callbacks(execute=True):
        posted = services.post_message(
            conversation_id=ticket.conversation.pk,
            sender=ticket.buyer,
            body=f"退到这张卡 {CARD}，身份证 {RESIDENT_ID}",
            client_id=uuid.uuid4(),
        )
    stored = Message.objects.get(pk=posted.message.pk)
    assert stored.body == "退到这张卡 622848******5671，身份证 110105********002X"
    assert CARD not in json.dumps([frame for _group, frame in published], ensure_ascii=False)
    assert RESIDENT_ID not in json.dumps([frame for _group, frame in published], ensure_ascii=False)


@pytest.mark.django_db
def test_the_postgresql_hot_path_stays_one_store_statement(claimed_ticket: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")
    ticket, _agent = claimed_ticket
    with CaptureQueriesContext(connection) as queries:
        services.post_message(
            conversation_id=ticket.conversation.pk, sender=ticket.buyer, body=f"卡号 {CARD}", client_id=uuid.uuid4()
        )
    stores = [q["sql"] for q in queries.captured_queries if "WITH input AS" in q["sql"]]
    assert len(stores) == 1
    assert CARD not in stores[0]
    assert "622848******5671" in stores[0]
    assert not any(CARD in q["sql"] for q in queries.captured_queries)


@pytest.mark.django_db
def test_a_caption_with_a_card_is_masked_too(claimed_ticket: Any) -> None:
    from tests.messaging.test_attachments import completed_upload

    ticket, _agent = claimed_ticket
    upload, _attachment = completed_upload(ticket, ticket.buyer)
    posted = services.post_message_with_attachments(
        conversation_id=ticket.conversation.pk,
        sender=ticket.buyer,
        body=f"card {CARD}",
        client_id=uuid.uuid4(),
        upload_ids=[upload.pk],
    )
    assert Message.objects.get(pk=posted.message.pk).body == "card 622848******5671"

"""Field encryption (refundchat/crypto.py), key rotation and the migration that encrypts stored accounts."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from refundchat import crypto
from tests import factories
from tickets.models import PayoutMethod, RefundTicket

ROOT = Path(__file__).resolve().parents[2]
CARD = "6228480012345671"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def test_encrypt_round_trip_and_no_clear_text_in_the_token() -> None:
    token = crypto.encrypt(CARD)
    assert CARD not in token
    assert crypto.decrypt(token) == CARD
    # Fresh randomness each time: equal numbers do not give equal tokens.
    assert crypto.encrypt(CARD) != token


def test_a_token_of_an_unknown_key_does_not_open() -> None:
    foreign = Fernet(Fernet.generate_key()).encrypt(CARD.encode()).decode()
    with pytest.raises(InvalidToken):
        crypto.decrypt(foreign)


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("6228480012345671", "622848******5671"),
        ("6222 0212 3456 7890 128", "622202*********0128"),
        ("501234567896", "501234**7896"),
    ],
)
def test_mask_card_keeps_first_six_and_last_four(number: str, masked: str) -> None:
    assert crypto.mask_card(number) == masked


@pytest.mark.parametrize(
    ("account", "masked"),
    [("13812345678", "138****5678"), ("alice.w@qq.com", "al***@qq.com"), ("wxid_alice88", "wx********88")],
)
def test_mask_account_hides_the_middle(account: str, masked: str) -> None:
    assert crypto.mask_account(account) == masked
    assert account not in crypto.mask_account(account)


def test_production_settings_refuse_to_start_without_keys() -> None:
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "x" * 50,
        "REFUNDCHAT_FIELD_KEYS": "",
        "DJANGO_SETTINGS_MODULE": "refundchat.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import refundchat.settings"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "REFUNDCHAT_FIELD_KEYS must be set" in result.stderr


def _ticket_with_card(username: str) -> RefundTicket:
    order = factories.order_with_items(buyer=factories.buyer(username=username), items=[(7900, 1)])
    return factories.open_ticket(order=order, payout_method=PayoutMethod.BANK_CARD, payout_account=CARD)


@pytest.mark.django_db
def test_rotate_field_keys_re_encrypts_every_row_and_the_old_key_can_go() -> None:
    with override_settings(REFUNDCHAT_FIELD_KEYS=[OLD_KEY]):
        tickets = [_ticket_with_card("alice"), _ticket_with_card("bob")]
        without_account = factories.open_ticket(
            order=factories.order_with_items(buyer=factories.buyer(username="carol"), items=[(100, 1)])
        )
    before = {t.pk: t.payout_account_encrypted for t in RefundTicket.objects.filter(pk__in=[t.pk for t in tickets])}

    out = StringIO()
    with override_settings(REFUNDCHAT_FIELD_KEYS=[NEW_KEY, OLD_KEY]):
        call_command("rotate_field_keys", "--batch-size", "1", stdout=out)
        assert "Re-encrypted 2 payout account(s)" in out.getvalue()
        # A second run finds nothing left to do.
        again = StringIO()
        call_command("rotate_field_keys", stdout=again)
        assert "Re-encrypted 0 payout account(s)" in again.getvalue()

    with override_settings(REFUNDCHAT_FIELD_KEYS=[NEW_KEY]):  # the old key removed
        for ticket in RefundTicket.objects.filter(pk__in=[t.pk for t in tickets]):
            assert ticket.payout_account_encrypted != before[ticket.pk]
            assert crypto.is_current(ticket.payout_account_encrypted)
            assert crypto.decrypt(ticket.payout_account_encrypted) == CARD
        # Nothing stale is left under the old key alone.
        with pytest.raises(InvalidToken):
            Fernet(OLD_KEY.encode()).decrypt(
                RefundTicket.objects.get(pk=tickets[0].pk).payout_account_encrypted.encode()
            )
    assert RefundTicket.objects.get(pk=without_account.pk).payout_account_encrypted == ""


@pytest.mark.django_db
def test_the_data_migration_encrypts_accounts_stored_in_clear() -> None:
    ticket = _ticket_with_card("alice")
    already = ticket.payout_account_encrypted
    legacy = _ticket_with_card("bob")
    RefundTicket.objects.filter(pk=legacy.pk).update(
        payout_method=PayoutMethod.ALIPAY, payout_account_encrypted="13812345678", payout_account_masked=""
    )
    migration: Any = importlib.import_module("tickets.migrations.0015_privacy_payout_accounts_access_log")
    with connection.schema_editor() as editor:
        migration.encrypt_existing_accounts(django_apps, editor)

    legacy.refresh_from_db()
    assert legacy.payout_account_encrypted != "13812345678"
    assert crypto.decrypt(legacy.payout_account_encrypted) == "13812345678"
    assert legacy.payout_account_masked == "138****5678"
    assert RefundTicket.objects.get(pk=ticket.pk).payout_account_encrypted == already  # left as it was

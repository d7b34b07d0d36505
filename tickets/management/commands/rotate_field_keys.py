"""Re-encrypt payout accounts under the first key of REFUNDCHAT_FIELD_KEYS (docs/security.md).

Rotation: put the new key first in REFUNDCHAT_FIELD_KEYS (keep the old ones after it), deploy, run this
command, then remove the old keys.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tickets import payouts


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field under the first key of REFUNDCHAT_FIELD_KEYS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = payouts.rotate_payout_accounts(batch_size=options["batch_size"])
        self.stdout.write(f"Re-encrypted {rotated} payout account(s) under the current key.")

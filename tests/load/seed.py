"""Seed the benchmark's people and tickets by bulk creation: `python -m tests.load.seed --conversations N ...`.

Run with DJANGO_SETTINGS_MODULE=refundchat.settings against the benchmark's database. Every run first removes
what an earlier run seeded (users named bench-*), so each run starts with empty conversations. Conversation i
belongs to buyer user i % B and is assigned to agent user (i % agent_sockets) % A: agent socket j watches the
conversations i with i % agent_sockets == j. Prints {"conversations": [...], "buyers": [...], "agents": [...]}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from typing import cast

PASSWORD = "refundchat"
PREFIX = "bench-"


def seed(*, conversations: int, buyer_users: int, agent_users: int, agent_sockets: int) -> dict[str, list[object]]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from django.db import transaction
    from django.utils import timezone

    from messaging.models import Conversation, Participant, ParticipantRole
    from tickets.models import Order, OrderItem, RefundTicket
    from tickets.roles import Role, ensure_role_groups

    user_model = get_user_model()
    ensure_role_groups()
    with transaction.atomic():
        RefundTicket.objects.filter(buyer__username__startswith=PREFIX).delete()
        Order.objects.filter(buyer__username__startswith=PREFIX).delete()
        user_model.objects.filter(username__startswith=PREFIX).delete()

        password = make_password(PASSWORD)  # one PBKDF2 hash, shared: seeding stays fast
        buyers = user_model.objects.bulk_create(
            user_model(username=f"{PREFIX}b{n:05d}", email=f"{PREFIX}b{n:05d}@example.com", password=password)
            for n in range(buyer_users)
        )
        agents = user_model.objects.bulk_create(
            user_model(username=f"{PREFIX}a{n:04d}", password=password) for n in range(agent_users)
        )
        membership = user_model.groups.through
        buyer_group, agent_group = Group.objects.get(name=Role.BUYER.value), Group.objects.get(name=Role.AGENT.value)
        membership.objects.bulk_create(
            [membership(user_id=u.pk, group_id=buyer_group.pk) for u in buyers]
            + [membership(user_id=u.pk, group_id=agent_group.pk) for u in agents]
        )

        now = timezone.now()
        orders = Order.objects.bulk_create(
            Order(
                buyer=buyers[i % buyer_users],
                order_no=f"BENCH{i:07d}",
                shipping_fee_cents=0,
                paid_total_cents=7900,
                paid_at=now - timedelta(days=5),
                delivered_at=now - timedelta(days=2),
            )
            for i in range(conversations)
        )
        OrderItem.objects.bulk_create(
            OrderItem(order=order, sku=f"SKU-B{i:07d}", title="纯棉T恤", unit_price_cents=7900, quantity=1)
            for i, order in enumerate(orders)
        )
        tickets = RefundTicket.objects.bulk_create(
            RefundTicket(
                order=order,
                buyer=order.buyer,
                kind="refund_only",
                reason="quality_defect",
                assigned_agent=agents[(i % agent_sockets) % agent_users],
                requested_amount_cents=7900,
                first_response_due_at=now + timedelta(hours=2),
            )
            for i, order in enumerate(orders)
        )
        convs = Conversation.objects.bulk_create(Conversation(ticket=ticket) for ticket in tickets)
        Participant.objects.bulk_create(
            [
                Participant(conversation=c, user_id=t.buyer_id, role=ParticipantRole.BUYER)
                for c, t in zip(convs, tickets, strict=True)
            ]
            + [
                Participant(conversation=c, user_id=cast(int, t.assigned_agent_id), role=ParticipantRole.AGENT)
                for c, t in zip(convs, tickets, strict=True)
            ]
        )
    return {
        "conversations": [c.pk for c in convs],
        "buyers": [u.username for u in buyers],
        "agents": [u.username for u in agents],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, required=True)
    parser.add_argument("--buyer-users", type=int, required=True)
    parser.add_argument("--agent-users", type=int, required=True)
    parser.add_argument("--agent-sockets", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refundchat.settings")
    import django

    django.setup()
    result = seed(
        conversations=args.conversations,
        buyer_users=args.buyer_users,
        agent_users=args.agent_users,
        agent_sockets=args.agent_sockets,
    )
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Demo accounts and realistic orders. Idempotent: running it twice changes nothing."""

from __future__ import annotations

import io
import random
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from messaging.assistant import services as assistant_services
from tickets.models import Order, OrderItem
from tickets.roles import Role, ensure_role_groups

DEMO_PASSWORD = "refundchat"

# username, first name, last name, role, is_staff (admin access)
DEMO_USERS: list[tuple[str, str, str, Role, bool]] = [
    ("alice", "Alice", "Wang", Role.BUYER, False),
    ("bob", "Bob", "Li", Role.BUYER, False),
    ("agent", "Wei", "Zhang", Role.AGENT, False),
    ("agent2", "Min", "Chen", Role.AGENT, False),
    ("finance", "Fang", "Liu", Role.FINANCE, False),
    ("warehouse", "Qiang", "Zhao", Role.WAREHOUSE, False),
    ("manager", "Jing", "Sun", Role.MANAGER, True),
]

# sku, title, unit price in cents, colour of the generated picture
CATALOGUE: list[tuple[str, str, int, str]] = [
    ("TS-COT-WHT-M", "纯棉圆领T恤 白色 M码", 7900, "#f5f5f5"),
    ("TS-COT-BLK-L", "纯棉圆领T恤 黑色 L码", 7900, "#222222"),
    ("JK-DWN-NVY-L", "轻薄羽绒服 藏青 L码", 59900, "#1e3a5f"),
    ("DR-SLK-RED-S", "真丝连衣裙 酒红 S码", 129900, "#8b1e3f"),
    ("JN-SLM-BLU-30", "修身牛仔裤 浅蓝 30", 19900, "#6fa8dc"),
    ("SN-RUN-GRY-42", "轻量跑步鞋 灰色 42码", 42900, "#9e9e9e"),
    ("SN-CAN-WHT-38", "经典帆布鞋 白色 38码", 15900, "#fafafa"),
    ("BG-LTH-BRN", "头层牛皮托特包 棕色", 89900, "#7b4a2a"),
    ("PH-CASE-IP15", "iPhone 15 透明防摔手机壳", 3900, "#cfe8ff"),
    ("EB-BT-PRO2", "降噪蓝牙耳机 Pro 2", 89900, "#eeeeee"),
    ("CH-USB-C-65W", "65W 氮化镓快充充电器", 12900, "#ffffff"),
    ("PB-20K-BLK", "20000mAh 移动电源 黑色", 14900, "#333333"),
    ("KB-MEC-87", "87键机械键盘 茶轴", 34900, "#444b5a"),
    ("MS-WLS-GRY", "无线静音鼠标 灰色", 8900, "#b0b0b0"),
    ("MG-CER-350", "陶瓷马克杯 350ml", 4500, "#f3d9b1"),
    ("PN-NST-28", "不粘炒锅 28cm", 19900, "#3c3c3c"),
    ("TW-COT-3P", "长绒棉毛巾 三条装", 6900, "#a8d5ba"),
    ("PL-MEM-STD", "记忆棉枕头 标准款", 15900, "#e8e4f0"),
    ("LM-LED-DSK", "LED 护眼台灯", 19900, "#fff2b3"),
    ("TO-LEGO-CTY", "积木玩具 城市消防站", 49900, "#e53935"),
    ("BK-ZH-NOVEL", "长篇小说《活着》精装", 4500, "#d7c4a3"),
    ("SK-HYA-50", "玻尿酸保湿精华 50ml", 25900, "#d9f1ff"),
    ("SK-SUN-SPF50", "清爽防晒乳 SPF50", 13900, "#fff8dc"),
    ("FD-TEA-LJ", "明前龙井 250g 礼盒", 36800, "#6b8e23"),
    ("FD-NUT-MIX", "每日坚果 30袋装", 12900, "#c49a6c"),
    ("WT-SMT-S8", "智能手表 S8 运动版", 129900, "#1f2937"),
]

ORDERS_PER_BUYER = 24


class Command(BaseCommand):
    help = "Create the demo accounts (password 'refundchat') and realistic orders for the buyers."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_DATA_ALLOWED:
            raise CommandError("Demo data is disabled in these settings (REFUNDCHAT_DEMO_DATA_ALLOWED is off).")
        with transaction.atomic():
            ensure_role_groups()
            users = {
                username: self._user(username, first, last, role, staff)
                for username, first, last, role, staff in DEMO_USERS
            }
            # The triage assistant's account (its internal notes' author), so the admin shows it from the start.
            assistant_services.assistant_user()
            created = 0
            for buyer_index, username in enumerate(("alice", "bob")):
                created += self._orders(users[username], buyer_index)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {len(users)} accounts, {created} new orders."))

    def _user(self, username: str, first: str, last: str, role: Role, staff: bool) -> Any:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com", "is_staff": staff},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=role.value))
        return user

    def _orders(self, buyer: Any, buyer_index: int) -> int:
        rng = random.Random(2026 + buyer_index)
        now = timezone.now()
        created = 0
        for n in range(ORDERS_PER_BUYER):
            order_no = f"2026{buyer_index + 1:02d}{n + 1:06d}"
            if Order.objects.filter(order_no=order_no).exists():
                continue
            products = rng.sample(CATALOGUE, k=rng.choice([1, 1, 2, 2, 3]))
            lines = [(product, rng.choice([1, 1, 1, 2, 3])) for product in products]
            shipping = rng.choice([0, 0, 600, 800, 1000])
            paid_at = now - timedelta(days=2 + n * 3, hours=rng.randint(0, 20), minutes=rng.randint(0, 59))
            delivered = n > 0  # the newest order is still on its way
            order = Order.objects.create(
                buyer=buyer,
                order_no=order_no,
                shipping_fee_cents=shipping,
                paid_total_cents=sum(price * qty for (_sku, _t, price, _c), qty in lines) + shipping,
                paid_at=paid_at,
                delivered_at=paid_at + timedelta(days=rng.randint(1, 3)) if delivered else None,
                recipient_name=buyer.get_full_name(),
                shipping_address=rng.choice(
                    ["上海市浦东新区世纪大道 100 号", "北京市朝阳区建国路 88 号", "广州市天河区天河路 385 号"]
                ),
            )
            for (sku, title, price, colour), quantity in lines:
                OrderItem.objects.create(
                    order=order,
                    sku=sku,
                    title=title,
                    unit_price_cents=price,
                    quantity=quantity,
                    image=product_image(sku, colour),
                )
            created += 1
        return created


def product_image(sku: str, colour: str) -> str:
    """The storage name of the SKU's picture, drawn once and shared by all its order items."""
    name = f"products/{sku.lower()}.png"
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(product_picture(sku, colour)))
    return name


def product_picture(sku: str, colour: str) -> bytes:
    """A simple 256×256 product picture: a coloured tile with the SKU on it."""
    image = Image.new("RGB", (256, 256), "#ffffff")
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((24, 24, 232, 200), radius=24, fill=colour, outline="#d0d0d0", width=2)
    draw.text((24, 214), sku, fill="#333333")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()

"""A large, realistic data set for the console and report benchmarks: `manage.py seed_bulk`.

By default 100,000 refund tickets and 1,000,000 chat messages over 180 days: buyers and agents, orders and their
items, tickets in every state (most finished, a few thousand open), the TicketEvent timeline of every transition
(each a transition of tickets/workflow.py TRANSITIONS, taken by an actor it allows), conversations with
participants and gap-free message sequences, return tracking numbers in the formats of workflow.CARRIERS, payouts,
labels, CSAT ratings and canned replies. Deterministic for a given --seed, relative to the time it runs.

Rows are written without the services (no socket frames, no Celery tasks, no outbox), with ids reserved from the
tables' sequences, through PostgreSQL COPY (psycopg 3), or batched INSERTs on other databases, all in one
transaction. From 5,000 tickets on, PostgreSQL's plain indexes of those tables (the trigram and bigram indexes of
the search among them) are dropped and built again after the load, in that transaction: much faster than growing
them row by row, but the tables stay locked until the commit, so seed a database nobody is using. The tables are
then vacuumed and analysed, as autovacuum would do on a live system.

Bulk rows belong to users whose username starts with "bulk-". The command refuses to run when such users exist,
unless --force, which first removes the earlier bulk rows (and only them: demo rows are never touched).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction
from django.utils import timezone

from messaging.models import Conversation, Message, MessageKind, Participant, ParticipantRole, Presence
from tickets.models import (
    FINAL_STATUSES,
    AgentProfile,
    CannedReply,
    Label,
    Order,
    OrderItem,
    Payout,
    PayoutStatus,
    RefundKind,
    RefundReason,
    RefundTicket,
    RefundTicketItem,
    ReturnCondition,
    SatisfactionRating,
    Team,
    TicketEvent,
    TicketEventKind,
    TicketLabel,
)
from tickets.models import TicketStatus as S
from tickets.notifications import system_message_key
from tickets.roles import Role, ensure_role_groups
from tickets.workflow import CARRIERS, COMMITTED_STATUSES, TRANSITIONS, Actor

PREFIX = "bulk-"
# The share of assigned tickets the triage assistant handed over, and its reason codes (messaging/assistant/dialog.py
# Reason) with their weights.
HANDOFF_SHARE = 0.7
HANDOFF_REASONS = ["buyer_asked", "needs_approval", "needs_judgement", "not_understood", "angry"]
HANDOFF_WEIGHTS = [35, 20, 20, 15, 10]
PASSWORD = "refundchat"
NEXT_RESPONSE_RULE = "next_response_breached"

# --- what the data is made of ------------------------------------------------------------------------------------

COLOURS = [
    ("WHT", "白色", "white"),
    ("BLK", "黑色", "black"),
    ("NVY", "藏青", "navy"),
    ("GRY", "灰色", "grey"),
    ("RED", "酒红", "burgundy"),
    ("BLU", "浅蓝", "light blue"),
    ("PNK", "粉色", "pink"),
    ("GRN", "墨绿", "dark green"),
]
SIZES = {"apparel": ["S", "M", "L", "XL", "XXL"], "shoes": [str(n) for n in range(36, 45)]}

# sku stem, Chinese title, English title, unit price in cents, variants: "apparel", "shoes", "colour" or ""
PRODUCTS: list[tuple[str, str, str, int, str]] = [
    ("TS-COT", "纯棉圆领T恤", "Cotton crew-neck T-shirt", 7900, "apparel"),
    ("TS-POLO", "商务休闲Polo衫", "Business casual polo shirt", 15900, "apparel"),
    ("JK-DWN", "轻薄羽绒服", "Lightweight down jacket", 59900, "apparel"),
    ("JK-WND", "防风冲锋衣", "Windproof hiking jacket", 45900, "apparel"),
    ("DR-SLK", "真丝连衣裙", "Silk midi dress", 129900, "apparel"),
    ("HD-FLC", "加绒连帽卫衣", "Fleece-lined hoodie", 19900, "apparel"),
    ("SW-CSH", "羊绒针织毛衣", "Cashmere knit sweater", 69900, "apparel"),
    ("JN-SLM", "修身牛仔裤", "Slim-fit jeans", 19900, "apparel"),
    ("PJ-COT", "纯棉家居服套装", "Cotton pyjama set", 16900, "apparel"),
    ("SK-PLT", "百褶半身裙", "Pleated skirt", 12900, "apparel"),
    ("SN-RUN", "轻量跑步鞋", "Lightweight running shoes", 42900, "shoes"),
    ("SN-CAN", "经典帆布鞋", "Classic canvas sneakers", 15900, "shoes"),
    ("BT-MRT", "真皮马丁靴", "Leather Martin boots", 49900, "shoes"),
    ("SL-EVA", "居家防滑拖鞋", "Non-slip EVA slippers", 3900, "shoes"),
    ("BG-LTH", "头层牛皮托特包", "Leather tote bag", 89900, "colour"),
    ("BP-CMP", "通勤双肩背包", "Commuter backpack", 25900, "colour"),
    ("PH-CASE-IP15", "iPhone 15 透明防摔手机壳", "Clear shockproof case for iPhone 15", 3900, "colour"),
    ("EB-BT-PRO2", "降噪蓝牙耳机 Pro 2", "Noise-cancelling Bluetooth earbuds Pro 2", 89900, "colour"),
    ("WT-SMT-S8", "智能手表 S8 运动版", "Smartwatch S8 Sport", 129900, "colour"),
    ("MS-WLS", "无线静音鼠标", "Silent wireless mouse", 8900, "colour"),
    ("KB-MEC-87", "87键机械键盘 茶轴", "87-key mechanical keyboard, brown switches", 34900, "colour"),
    ("TB-INS-500", "不锈钢保温杯 500ml", "Stainless insulated bottle 500 ml", 9900, "colour"),
    ("CH-USB-C-65W", "65W 氮化镓快充充电器", "65 W GaN USB-C charger", 12900, ""),
    ("PB-20K", "20000mAh 移动电源", "20,000 mAh power bank", 14900, ""),
    ("SSD-1T", "1TB 移动固态硬盘", "1 TB portable SSD", 59900, ""),
    ("MON-27-4K", "27英寸 4K 显示器", "27-inch 4K monitor", 199900, ""),
    ("RV-ROBO-X", "扫地机器人 X 系列", "Robot vacuum X series", 249900, ""),
    ("AF-5L", "5L 大容量空气炸锅", "5 L air fryer", 39900, ""),
    ("KT-GLS-17", "玻璃电热水壶 1.7L", "Glass electric kettle 1.7 L", 12900, ""),
    ("PN-NST-28", "不粘炒锅 28cm", "Non-stick wok 28 cm", 19900, ""),
    ("MG-CER-350", "陶瓷马克杯 350ml", "Ceramic mug 350 ml", 4500, ""),
    ("TW-COT-3P", "长绒棉毛巾 三条装", "Long-staple cotton towels, set of 3", 6900, ""),
    ("PL-MEM-STD", "记忆棉枕头 标准款", "Memory foam pillow", 15900, ""),
    ("LM-LED-DSK", "LED 护眼台灯", "LED desk lamp", 19900, ""),
    ("TO-BLK-FIRE", "积木玩具 城市消防站", "Building blocks: city fire station", 49900, ""),
    ("BK-ZH-NOVEL", "长篇小说《活着》精装", "To Live, hardcover novel", 4500, ""),
    ("SK-HYA-50", "玻尿酸保湿精华 50ml", "Hyaluronic acid serum 50 ml", 25900, ""),
    ("SK-SUN-SPF50", "清爽防晒乳 SPF50", "Light sunscreen SPF 50", 13900, ""),
    ("LP-MAT-03", "丝绒哑光口红 #03", "Velvet matte lipstick #03", 19900, ""),
    ("FD-TEA-LJ", "明前龙井 250g 礼盒", "Longjing green tea 250 g gift box", 36800, ""),
    ("FD-NUT-MIX", "每日坚果 30袋装", "Daily mixed nuts, 30 packs", 12900, ""),
    ("FD-MLK-24", "纯牛奶 250ml×24盒", "Whole milk 250 ml × 24", 6990, ""),
    ("BB-DPR-L58", "婴儿纸尿裤 L码 58片", "Baby diapers size L, 58 pcs", 12900, ""),
    ("PT-CAT-10K", "全价猫粮 10kg", "Complete cat food 10 kg", 29900, ""),
]

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范"
    "金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_NAMES = (  # noqa: SIM905
    "伟 芳 娜 秀英 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀兰 霞 平 刚 桂英 子涵 欣怡 梓涵 一诺 浩宇 "
    "宇轩 雨桐 思远 晨曦 嘉怡 俊杰 佳琪 雅婷 博文 晓东 海燕 建华 志强 丽娟 文静 梦瑶 子轩 诗涵"
).split()
EN_FIRST = "James Emma Oliver Sophia Liam Mia Noah Ava Lucas Chloe Ethan Grace Daniel Lily Ryan Hannah".split()  # noqa: SIM905
EN_LAST = "Smith Brown Wilson Taylor Lee Wong Chan Martin Clark Walker Young King Wright Scott Green".split()  # noqa: SIM905
ADDRESSES = [
    "上海市浦东新区世纪大道 {n} 号",
    "北京市朝阳区建国路 {n} 号",
    "广州市天河区天河路 {n} 号",
    "深圳市南山区科技园南路 {n} 号",
    "杭州市西湖区文三路 {n} 号",
    "成都市武侯区人民南路四段 {n} 号",
    "武汉市洪山区珞喻路 {n} 号",
    "南京市鼓楼区中山路 {n} 号",
    "西安市雁塔区长安南路 {n} 号",
    "重庆市渝中区解放碑民族路 {n} 号",
]

REASON_WEIGHTS = {
    RefundReason.WRONG_SIZE: 20,
    RefundReason.QUALITY_DEFECT: 22,
    RefundReason.COLOUR_DIFFERS: 8,
    RefundReason.DAMAGED_IN_TRANSIT: 10,
    RefundReason.MISSING_ITEM: 6,
    RefundReason.NOT_RECEIVED: 9,
    RefundReason.WRONG_ITEM: 7,
    RefundReason.CHANGED_MIND: 13,
    RefundReason.OTHER: 5,
}

BUYER_OPENERS: dict[str, dict[str, list[str]]] = {
    "zh-hans": {
        RefundReason.WRONG_SIZE: ["尺码偏小，平时穿M这次完全穿不上。", "鞋子大了一码，走路会掉跟，想退货退款。"],
        RefundReason.COLOUR_DIFFERS: ["收到的颜色和图片差别太大了，实物偏暗。", "我买的是藏青，收到的看起来像黑色。"],
        RefundReason.QUALITY_DEFECT: [
            "质量有问题，刚穿两天就开线了。",
            "耳机右耳没有声音，重置也没用。",
            "充电器用了一次就不能充电了，还有点发烫。",
        ],
        RefundReason.DAMAGED_IN_TRANSIT: [
            "快递到的时候外箱破了，里面的东西摔坏了。",
            "杯子收到就是碎的，盒子都压扁了。",
        ],
        RefundReason.MISSING_ITEM: ["我买了两件只收到一件，麻烦核实一下。", "包裹里少了配件，没有充电线。"],
        RefundReason.NOT_RECEIVED: ["物流显示已签收，但是我根本没收到。", "快一个星期了还没到，物流信息一直没更新。"],
        RefundReason.WRONG_ITEM: [
            "发错货了，我买的是白色M码，收到的是黑色L码。",
            "收到的商品和订单上的不是同一个型号。",
        ],
        RefundReason.CHANGED_MIND: ["不好意思，不想要了，还没拆封，可以退吗？", "买重复了，想退掉一件。"],
        RefundReason.OTHER: ["想咨询一下退款的问题。", "商品和描述不太一样，想申请退款。"],
    },
    "en": {
        RefundReason.WRONG_SIZE: [
            "It runs small, I normally wear an M and can't get it on.",
            "The shoes are a size too big.",
        ],
        RefundReason.COLOUR_DIFFERS: [
            "The colour is much darker than in the pictures.",
            "I ordered navy but it looks black.",
        ],
        RefundReason.QUALITY_DEFECT: [
            "The seam came apart after two days.",
            "The right earbud has no sound, a reset didn't help.",
            "The charger stopped working after one use and got hot.",
        ],
        RefundReason.DAMAGED_IN_TRANSIT: [
            "The box arrived crushed and the item inside is broken.",
            "The mug was in pieces.",
        ],
        RefundReason.MISSING_ITEM: ["I ordered two but only got one.", "The cable is missing from the box."],
        RefundReason.NOT_RECEIVED: [
            "Tracking says delivered but I never got it.",
            "It's been a week and tracking hasn't moved.",
        ],
        RefundReason.WRONG_ITEM: [
            "Wrong item: I ordered a white M and got a black L.",
            "This is not the model I ordered.",
        ],
        RefundReason.CHANGED_MIND: [
            "Sorry, I changed my mind. It's still sealed, can I return it?",
            "I ordered it twice.",
        ],
        RefundReason.OTHER: ["I have a question about a refund.", "The item isn't quite as described."],
    },
}
BUYER_FOLLOW_UPS = {
    "zh-hans": [
        "好的，谢谢。",
        "照片已经上传了，请看一下。",
        "请问大概什么时候能退款？",
        "已经寄回了，单号发你了。",
        "怎么还没处理？都等了两天了。",
        "可以只退款不退货吗？",
        "退货运费谁来承担？",
        "好的，我明天寄出。",
        "收到，辛苦了！",
        "退款到账了，谢谢客服。",
        "麻烦快一点，我急用这笔钱。",
        "我已经按要求拍了视频。",
        "这个金额不对吧，少退了运费。",
        "嗯嗯，明白了。",
        "那我等你们消息。",
        "包装盒还在，配件也都齐全。",
        "我是在双十一活动的时候买的，现在降价了。",
    ],
    "en": [
        "Thanks.",
        "I've uploaded the photos.",
        "When will I get the refund?",
        "I shipped it back today, the tracking number is in the form.",
        "Any update? It's been two days.",
        "Can I get a refund without returning it?",
        "Who pays for the return shipping?",
        "Got it, thank you!",
        "The refund arrived, thanks for your help.",
        "The amount looks wrong, the shipping fee is missing.",
        "OK, I'll wait for your reply.",
        "I still have the box and all the accessories.",
    ],
}
AGENT_REPLIES = {
    "zh-hans": [
        "您好，我是客服{agent}，很抱歉给您带来不便。",
        "麻烦您提供一下商品问题部位的照片，以及外包装的照片。",
        "已经帮您提交退款申请，预计24小时内原路退回。",
        "您好，这边需要您先把商品寄回，退货地址已经发到订单页面。",
        "收到您的退货了，仓库验收后会尽快为您退款。",
        "退款已经处理，请留意支付账户的到账通知。",
        "非常抱歉，经核实商品已经使用过，无法全额退款。",
        "请问还有其他可以帮到您的吗？",
        "运费这边会一起退还给您。",
        "已经联系快递核实，请您耐心等待一下。",
        "理解您的心情，我们会尽快处理。",
        "感谢您的耐心等待！",
        "寄回时请在包裹里附上写有订单号的纸条，方便仓库核对。",
    ],
    "en": [
        "Hello, this is {agent} from customer service. Sorry for the trouble.",
        "Could you send a photo of the defect and of the outer packaging?",
        "I've approved your refund; it will be back on your original payment method within 24 hours.",
        "Please send the item back first; the return address is on your order page.",
        "We've received your return and the warehouse is checking it now.",
        "Your refund has been paid out. Please check your account.",
        "I'm sorry, the item shows signs of use, so we can only refund part of the amount.",
        "Is there anything else I can help you with?",
        "We will refund the shipping fee as well.",
        "I've asked the courier to look into it. Please bear with us.",
        "Thanks for your patience!",
    ],
}
CREATED_TEXT = {
    "zh-hans": "工单 {number} 已创建，客服将在 2 小时内回复。",
    "en": "Ticket {number} created, an agent will answer within 2 hours.",
}
SHIPPED_TEXT = {"zh-hans": "已经寄回了，单号 {tracking}，麻烦查收。", "en": "Sent it back, tracking number {tracking}."}
RATING_COMMENTS = {
    "zh-hans": ["处理很快，满意。", "客服态度很好。", "退款太慢了。", "流程有点复杂。", "还行吧。", "谢谢，下次还来。"],
    "en": ["Quick and friendly.", "The refund took too long.", "Fine.", "Great service, thanks!"],
}
TRANSITION_REASONS = {
    "request_evidence": {"zh-hans": "请提供商品问题部位的照片。", "en": "Please send photos of the problem."},
    "reject": {"zh-hans": "商品已使用，不符合退款条件。", "en": "The item was used; it cannot be refunded."},
    "escalate": {"zh-hans": "买家申请平台介入。", "en": "The buyer asked the platform to decide."},
    "arbitrate_refund": {"zh-hans": "平台仲裁：支持买家退款。", "en": "Arbitration: refund the buyer."},
    "arbitrate_reject": {"zh-hans": "平台仲裁：证据不足，驳回。", "en": "Arbitration: not enough evidence."},
    "close": {"zh-hans": "7 天内未收到所需材料，自动关闭。", "en": "Nothing arrived within 7 days."},
}
LABELS = [
    ("VIP", "#7c3aed"),
    ("疑似欺诈", "#dc2626"),
    ("双11", "#ea580c"),
    ("大额退款", "#0891b2"),
    ("重复投诉", "#ca8a04"),
    ("物流异常", "#2563eb"),
]
TEAM_REPLIES = [
    ("问候", "zh-hans", "您好 {buyer_name}，我是客服，很高兴为您服务。"),
    ("索要照片", "zh-hans", "您好，麻烦提供订单 {order_no} 商品问题部位的照片和外包装照片，谢谢。"),
    ("退款已批准", "zh-hans", "您的退款 {refund_amount} 已批准，预计 {eta} 前原路退回。"),
    ("寄回说明", "zh-hans", "请将商品寄回，并在包裹内附上订单号 {order_no}。"),
    ("Greeting", "en", "Hello {buyer_name}, thanks for contacting us."),
    ("Refund approved", "en", "Your refund of {refund_amount} is approved and will arrive by {eta}."),
]
CARRIER_WEIGHTS = {"SF": 25, "ZTO": 20, "YTO": 15, "YUNDA": 12, "STO": 10, "JD": 12, "EMS": 6}

# --- ticket histories ----------------------------------------------------------------------------------------------

# (final state, weight in ‰ of all tickets, the transitions from "requested")
PATHS: list[tuple[S, float, tuple[str, ...]]] = [
    (S.REFUNDED, 280, ("start_review", "approve_refund_only", "request_payout", "complete_payout")),
    (
        S.REFUNDED,
        80,
        ("request_evidence", "submit_evidence", "approve_refund_only", "request_payout", "complete_payout"),
    ),
    (
        S.REFUNDED,
        200,
        ("start_review", "require_return", "ship_return", "receive_return", "request_payout", "complete_payout"),
    ),
    (
        S.REFUNDED,
        40,
        (
            "request_evidence",
            "submit_evidence",
            "require_return",
            "ship_return",
            "receive_return",
            "request_payout",
            "complete_payout",
        ),
    ),
    (S.REFUNDED, 12, ("start_review", "escalate", "arbitrate_refund", "request_payout", "complete_payout")),
    (S.REJECTED, 60, ("start_review", "reject")),
    (S.REJECTED, 20, ("request_evidence", "submit_evidence", "reject")),
    (S.REJECTED, 10, ("start_review", "require_return", "ship_return", "receive_return", "reject")),
    (S.REJECTED, 8, ("start_review", "escalate", "arbitrate_reject")),
    (S.CANCELLED, 70, ("cancel",)),
    (S.CANCELLED, 40, ("start_review", "cancel")),
    (S.CANCELLED, 25, ("start_review", "require_return", "cancel")),
    (S.CLOSED, 50, ("request_evidence", "close")),
    (S.CLOSED, 30, ("start_review", "require_return", "close")),
    # Open tickets: about 3.5 %.
    (S.REQUESTED, 6, ()),
    (S.AWAITING_EVIDENCE, 4, ("request_evidence",)),
    (S.UNDER_REVIEW, 5, ("start_review",)),
    (S.UNDER_REVIEW, 2, ("request_evidence", "submit_evidence")),
    (S.APPROVED_REFUND_ONLY, 2, ("start_review", "approve_refund_only")),
    (S.RETURN_REQUIRED, 4, ("start_review", "require_return")),
    (S.RETURN_IN_TRANSIT, 5, ("start_review", "require_return", "ship_return")),
    (S.RETURN_RECEIVED, 2, ("start_review", "require_return", "ship_return", "receive_return")),
    (S.REFUND_PENDING, 2, ("start_review", "approve_refund_only", "request_payout")),
    (S.ESCALATED, 3, ("start_review", "escalate")),
]

# Who takes each step here, and how long after the previous one it comes (seconds, low and high).
STEP_ACTOR: dict[str, Actor] = {
    "request_evidence": Actor.AGENT,
    "submit_evidence": Actor.BUYER,
    "start_review": Actor.AGENT,
    "approve_refund_only": Actor.AGENT,
    "require_return": Actor.AGENT,
    "ship_return": Actor.BUYER,
    "receive_return": Actor.WAREHOUSE,
    "request_payout": Actor.AGENT,
    "complete_payout": Actor.SYSTEM,
    "reject": Actor.AGENT,
    "cancel": Actor.BUYER,
    "close": Actor.SYSTEM,
    "escalate": Actor.BUYER,
    "arbitrate_refund": Actor.MANAGER,
    "arbitrate_reject": Actor.MANAGER,
}
MINUTE, HOUR, DAY = 60, 3600, 86400
STEP_DELAY: dict[str, tuple[int, int]] = {
    "request_evidence": (10 * MINUTE, 4 * HOUR),
    "submit_evidence": (HOUR, 2 * DAY),
    "start_review": (5 * MINUTE, 3 * HOUR),
    "approve_refund_only": (10 * MINUTE, DAY),
    "require_return": (10 * MINUTE, DAY),
    "ship_return": (2 * HOUR, 3 * DAY),
    "receive_return": (DAY, 4 * DAY),
    "request_payout": (MINUTE, 6 * HOUR),
    "complete_payout": (MINUTE, DAY),
    "reject": (30 * MINUTE, 2 * DAY),
    "cancel": (10 * MINUTE, 2 * DAY),
    "close": (7 * DAY, 7 * DAY + HOUR),
    "escalate": (HOUR, 2 * DAY),
    "arbitrate_refund": (4 * HOUR, 3 * DAY),
    "arbitrate_reject": (4 * HOUR, 3 * DAY),
}
NEEDS_RETURN = {"require_return"}


def check_paths() -> None:
    """Every history above is a walk through workflow.TRANSITIONS, each step by an actor it allows."""
    for final, _weight, steps in PATHS:
        status = S.REQUESTED
        for name in steps:
            transition = TRANSITIONS[name]
            if status not in transition.sources or STEP_ACTOR[name] not in transition.actors:
                raise AssertionError(f"{name} is not a step from {status} by {STEP_ACTOR[name]}")
            status = transition.target
        if status != final:
            raise AssertionError(f"{steps} ends in {status}, not {final}")


# --- writing rows ----------------------------------------------------------------------------------------------


class Writer:
    """Rows into tables, by COPY on PostgreSQL or batched INSERTs elsewhere; ids reserved from the sequences."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"
        self._next: dict[type[models.Model], int] = {}
        self._end: dict[type[models.Model], int] = {}
        self.rows: dict[type[models.Model], int] = {}

    def new_id(self, model: type[models.Model], block: int = 20_000) -> int:
        if self._next.get(model, 0) >= self._end.get(model, 0):
            first = self._reserve(model, block)
            self._next[model], self._end[model] = first, first + block
        value = self._next[model]
        self._next[model] = value + 1
        return value

    def _reserve(self, model: type[models.Model], count: int) -> int:
        table = model._meta.db_table
        with connection.cursor() as cursor:
            if self.postgres:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
                sequence = cursor.fetchone()[0]
                cursor.execute("SELECT nextval(%s)", [sequence])
                first = int(cursor.fetchone()[0])
                cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
                return first
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")
            return max(int(cursor.fetchone()[0]) + 1, self._end.get(model, 0))

    def suspend_indexes(self, tables: Sequence[type[models.Model]]) -> list[str]:
        """Drop the plain (not unique, not constraint) indexes of these tables in the current transaction;
        returns their definitions for restore_indexes. A failure rolls the drop back with everything else."""
        if not self.postgres:
            return []
        names = [model._meta.db_table for model in tables]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes i WHERE schemaname = current_schema() "
                "AND tablename = ANY(%s) AND indexdef NOT LIKE 'CREATE UNIQUE%%' "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
                [names],
            )
            found = cursor.fetchall()
            for name, _definition in found:
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
        return [definition for _name, definition in found]

    def restore_indexes(self, definitions: Sequence[str]) -> None:
        with connection.cursor() as cursor:
            # The deferred foreign-key checks of the rows written must run before an index can be built.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for definition in definitions:
                cursor.execute(definition)

    def write(self, model: type[models.Model], columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        quote = connection.ops.quote_name
        table, names = quote(model._meta.db_table), ", ".join(quote(c) for c in columns)
        self.rows[model] = self.rows.get(model, 0) + len(rows)
        with connection.cursor() as cursor:
            if self.postgres:
                raw = cursor.cursor  # the psycopg cursor: COPY, and no 100,000 entries in connection.queries
                with raw.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                return
            placeholders = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {table} ({names}) VALUES ({placeholders})"
            for start in range(0, len(rows), 500):
                cursor.executemany(sql, [tuple(_adapt(v) for v in row) for row in rows[start : start + 500]])


def _adapt(value: Any) -> Any:
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, uuid.UUID):
        return value.hex
    return value


# --- the plan --------------------------------------------------------------------------------------------------


@dataclass
class People:
    buyers: list[tuple[int, str, str]]  # id, display name, language
    agents: list[tuple[int, str]]  # id, name
    finance: int
    warehouse: int
    manager: int


@dataclass
class Batch:
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[tuple[Any, ...]] = field(default_factory=list)
    tickets: list[tuple[Any, ...]] = field(default_factory=list)
    ticket_items: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    conversations: list[tuple[Any, ...]] = field(default_factory=list)
    participants: list[tuple[Any, ...]] = field(default_factory=list)
    messages: list[tuple[Any, ...]] = field(default_factory=list)
    payouts: list[tuple[Any, ...]] = field(default_factory=list)
    ratings: list[tuple[Any, ...]] = field(default_factory=list)
    labels: list[tuple[Any, ...]] = field(default_factory=list)


ORDER_COLUMNS = (
    "id",
    "buyer_id",
    "order_no",
    "shipping_fee_cents",
    "paid_total_cents",
    "paid_at",
    "delivered_at",
    "recipient_name",
    "shipping_address",
    "refund_committed_cents",
    "created_at",
)
ITEM_COLUMNS = ("id", "order_id", "sku", "title", "unit_price_cents", "quantity", "image")
TICKET_COLUMNS = (
    "id",
    "order_id",
    "buyer_id",
    "kind",
    "reason",
    "description",
    "status",
    "assigned_agent_id",
    "requested_amount_cents",
    "approved_amount_cents",
    "refund_shipping_fee",
    "return_carrier",
    "return_tracking_no",
    "return_shipped_at",
    "return_received_at",
    "return_condition",
    "language",
    "created_at",
    "updated_at",
    "first_response_due_at",
    "first_responded_at",
    "sla_breached_at",
    "next_response_breached_at",
    "resolved_at",
    "team",
)
TICKET_ITEM_COLUMNS = ("id", "ticket_id", "order_item_id", "quantity")
EVENT_COLUMNS = (
    "id",
    "ticket_id",
    "kind",
    "actor_id",
    "from_status",
    "to_status",
    "reason",
    "data",
    "visible_to_buyer",
    "created_at",
)
CONVERSATION_COLUMNS = ("id", "ticket_id", "last_seq", "last_message_at", "created_at")
PARTICIPANT_COLUMNS = ("id", "conversation_id", "user_id", "role", "delivered_seq", "read_seq", "joined_at")
MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "seq",
    "kind",
    "sender_id",
    "body",
    "data",
    "has_attachments",
    "client_id",
    "created_at",
)
PAYOUT_COLUMNS = (
    "id",
    "ticket_id",
    "amount_cents",
    "status",
    "idempotency_key",
    "attempts",
    "provider",
    "provider_reference",
    "approved_by_id",
    "last_error",
    "created_at",
    "updated_at",
    "paid_at",
)
RATING_COLUMNS = ("id", "ticket_id", "score", "comment", "created_at")
TICKET_LABEL_COLUMNS = ("id", "ticket_id", "label_id")


def tracking_number(rng: random.Random, carrier: str) -> str:
    """A number that matches workflow.CARRIERS[carrier]."""

    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    number = {
        "SF": lambda: "SF" + digits(rng.choice((12, 13))),
        "JD": lambda: "JDV" + rng.choice("ABCDEF") + digits(rng.choice((9, 10, 11))),
        "ZTO": lambda: rng.choice(("73", "75", "78")) + digits(rng.choice((10, 11, 12))),
        "YTO": lambda: "YT" + digits(rng.choice((13, 15))),
        "STO": lambda: rng.choice(("77", "88", "55")) + digits(rng.choice((10, 12, 13))),
        "EMS": lambda: rng.choice(("EA", "EB", "EM")) + digits(9) + "CN" if rng.random() < 0.6 else "1" + digits(12),
        "YUNDA": lambda: rng.choice(("31", "43", "46", "53")) + digits(rng.choice((11, 13))),
    }[carrier]()
    assert CARRIERS[carrier][1].match(number), (carrier, number)
    return number


class Generator:
    """Builds the rows of each ticket: its order, history, chat and the rest, consistent with each other."""

    def __init__(
        self, *, rng: random.Random, writer: Writer, people: People, now: datetime, days: int, label_ids: list[int]
    ) -> None:
        self.rng, self.writer, self.people, self.now, self.days = rng, writer, people, now, days
        self.label_ids = label_ids
        self.sla = settings.REFUNDCHAT_FIRST_RESPONSE_SLA
        self.next_sla = settings.REFUNDCHAT_NEXT_RESPONSE_SLA
        self.carriers = list(CARRIER_WEIGHTS)
        self.carrier_weights = list(CARRIER_WEIGHTS.values())
        self.reasons = list(REASON_WEIGHTS)
        self.reason_weights = list(REASON_WEIGHTS.values())
        self.order_seq = 0
        # The assistant's hand-offs (issue #8 reports) draw from their own generator, so the rest of the data set
        # stays what it was for a given --seed (deterministic too, with a seed of its own).
        self.handoff_rng = random.Random("assistant-handoffs")

    def _at(self, moment: datetime, low: int, high: int) -> datetime:
        return moment + timedelta(seconds=self.rng.randint(low, high))

    def add_ticket(self, batch: Batch, *, path: int, message_count: int) -> None:
        rng, new_id = self.rng, self.writer.new_id
        final, _weight, steps = PATHS[path]
        is_open = final not in FINAL_STATUSES
        buyer_id, buyer_name, language = rng.choice(self.people.buyers)
        needs_return = any(step in NEEDS_RETURN for step in steps)
        kind = RefundKind.RETURN_AND_REFUND if needs_return or rng.random() < 0.3 else RefundKind.REFUND_ONLY
        reason = rng.choices(self.reasons, self.reason_weights)[0]
        if reason == RefundReason.NOT_RECEIVED and needs_return:
            reason = RefundReason.QUALITY_DEFECT

        # The history as offsets from the ticket's creation; the creation time is chosen to fit it in.
        unassigned = (final == S.REQUESTED and rng.random() < 0.6) or (steps == ("cancel",) and rng.random() < 0.5)
        assign_offset = None if unassigned else rng.randint(5, 10 * MINUTE)
        answered = not unassigned and (final != S.REQUESTED or rng.random() < 0.5)
        first_response = None
        if answered:
            assert assign_offset is not None  # only an assigned agent answers: after the (re)assignment
            first_response = assign_offset + 2 * MINUTE + round(rng.triangular(0, 140 * MINUTE, 10 * MINUTE))
        offsets: list[int] = []
        clock = first_response or 0
        for name in steps:
            low, high = STEP_DELAY[name]
            clock += rng.randint(low, high)
            offsets.append(clock)
        end = clock
        if is_open:
            idle = rng.randint(5 * MINUTE, 6 * HOUR) if final == S.REQUESTED else rng.randint(10 * MINUTE, 2 * DAY)
            created = self.now - timedelta(seconds=end + idle)
        else:
            window = max(self.days * DAY - end - HOUR, HOUR)
            created = self.now - timedelta(seconds=end + HOUR + rng.randint(0, window))
        created = created.replace(microsecond=0)

        def at(offset: int) -> datetime:
            return created + timedelta(seconds=offset)

        # The order and the items asked back.
        order_id = new_id(Order)
        self.order_seq += 1
        paid_at = created - timedelta(seconds=rng.randint(2 * DAY, 20 * DAY))
        delivered_at = None if reason == RefundReason.NOT_RECEIVED else paid_at + timedelta(days=rng.randint(1, 4))
        lines = []
        for product in rng.sample(PRODUCTS, k=rng.choice((1, 1, 1, 2, 2, 3))):
            stem, zh, en, price, variants = product
            sku, title = stem, (zh if language == "zh-hans" else en)
            if variants:
                code, colour_zh, colour_en = rng.choice(COLOURS)
                sku += f"-{code}"
                title += f" {colour_zh}" if language == "zh-hans" else f", {colour_en}"
                if variants in SIZES:
                    size = rng.choice(SIZES[variants])
                    sku += f"-{size}"
                    title += f" {size}码" if language == "zh-hans" else f", size {size}"
            lines.append((new_id(OrderItem), sku, title, price, rng.choice((1, 1, 1, 2, 3))))
        shipping = rng.choice((0, 0, 0, 600, 800, 1000))
        paid_total = sum(price * qty for _i, _s, _t, price, qty in lines) + shipping
        asked = [(item_id, qty if rng.random() < 0.8 else 1, price) for item_id, _s, _t, price, qty in lines]
        asked = asked[: rng.randint(1, len(asked))]
        requested = sum(qty * price for _i, qty, price in asked)

        ticket_id = new_id(RefundTicket)
        number = f"RC-{ticket_id:06d}"
        agents = self.people.agents
        agent_id, agent_name = rng.choice(agents) if not unassigned else (None, "")
        previous_agent: int | None = None
        events: list[tuple[Any, ...]] = []

        def event(when: datetime, kind: str, actor: int | None, *, visible: bool = True, **extra: Any) -> None:
            events.append(
                (
                    new_id(TicketEvent),
                    ticket_id,
                    kind,
                    actor,
                    extra.get("from_status", ""),
                    extra.get("to_status", ""),
                    extra.get("reason", ""),
                    json.dumps(extra.get("data", {}), ensure_ascii=False),
                    visible,
                    when,
                )
            )

        event(
            created,
            TicketEventKind.CREATED,
            buyer_id,
            to_status=S.REQUESTED,
            data={"kind": kind, "reason": reason, "items": [[i, q] for i, q, _p in asked]},
        )
        if assign_offset is not None and self.handoff_rng.random() < HANDOFF_SHARE:
            # The triage assistant talked first and handed the ticket to a human just before it was assigned.
            handoff_reason = self.handoff_rng.choices(HANDOFF_REASONS, HANDOFF_WEIGHTS)[0]
            event(at(assign_offset - 1), TicketEventKind.ASSISTANT_HANDOFF, None, visible=False, reason=handoff_reason)
        if assign_offset is not None:
            assert agent_id is not None
            if rng.random() < 0.05 and len(agents) > 1:
                previous_agent = rng.choice([a for a, _n in agents if a != agent_id])
                event(
                    at(assign_offset),
                    TicketEventKind.ASSIGNED,
                    None,
                    visible=False,
                    data={"agent_id": previous_agent, "previous_agent_id": None, "how": "auto"},
                )
                event(
                    at(assign_offset + 60),
                    TicketEventKind.ASSIGNED,
                    previous_agent,
                    visible=False,
                    data={"agent_id": agent_id, "previous_agent_id": previous_agent, "how": "transfer"},
                )
            else:
                event(
                    at(assign_offset),
                    TicketEventKind.ASSIGNED,
                    None,
                    visible=False,
                    data={"agent_id": agent_id, "previous_agent_id": None, "how": "auto"},
                )
        due = created + self.sla
        first_responded_at = at(first_response) if first_response is not None else None
        if first_responded_at is not None:
            event(first_responded_at, TicketEventKind.FIRST_RESPONSE, agent_id, visible=False)

        # The state machine, step by step.
        status = S.REQUESTED
        approved: int | None = None
        refund_shipping_fee = False
        carrier = tracking = condition = ""
        shipped_at = received_at = resolved_at = None
        payout_requested_at = paid_out_at = None
        for name, offset in zip(steps, offsets, strict=True):
            when = at(offset)
            transition = TRANSITIONS[name]
            actor_kind = STEP_ACTOR[name]
            actor = {
                Actor.AGENT: agent_id,
                Actor.BUYER: buyer_id,
                Actor.WAREHOUSE: self.people.warehouse,
                Actor.FINANCE: self.people.finance,
                Actor.MANAGER: self.people.manager,
            }.get(actor_kind)
            data: dict[str, Any] = {"transition": name, "actor_role": actor_kind.value}
            reason_text = TRANSITION_REASONS.get(name, {}).get(language, "")
            if name in ("approve_refund_only", "require_return", "arbitrate_refund"):
                amount = requested if rng.random() < 0.85 else max(1, requested * rng.randint(50, 95) // 100)
                refund_shipping_fee = shipping > 0 and rng.random() < 0.3
                amount += shipping if refund_shipping_fee else 0
                data.update(amount_cents=amount, previous_amount_cents=approved or 0)
                approved = amount
            elif name == "ship_return":
                carrier = rng.choices(self.carriers, self.carrier_weights)[0]
                tracking, shipped_at = tracking_number(rng, carrier), when
                data.update(carrier=carrier, tracking_no=tracking)
            elif name == "receive_return":
                condition = rng.choices(list(ReturnCondition.values), (80, 10, 6, 4))[0]
                received_at = when
                data["condition"] = condition
                if condition != ReturnCondition.INTACT and approved and rng.random() < 0.5:
                    lowered = max(1, approved * 7 // 10)
                    data.update(amount_cents=lowered, previous_amount_cents=approved)
                    approved = lowered
            elif name == "close":
                timer = "evidence_not_sent" if status == S.AWAITING_EVIDENCE else "return_not_shipped"
                data["timer"] = timer
                event(when - timedelta(seconds=1), TicketEventKind.TIMER, None, visible=False, data={"timer": timer})
            elif name == "request_payout":
                payout_requested_at = when
            elif name == "complete_payout":
                paid_out_at = when
            if transition.target not in COMMITTED_STATUSES and status in COMMITTED_STATUSES:
                data.update(amount_cents=0, previous_amount_cents=approved or 0)
                approved = None
            event(
                when,
                TicketEventKind.STATUS_CHANGED,
                actor,
                from_status=status,
                to_status=transition.target,
                reason=reason_text,
                data=data,
                visible=transition.visible_to_buyer,
            )
            status = transition.target
            if status in FINAL_STATUSES:
                resolved_at = when
        last_event_at = at(end)
        # The timer flags a ticket still open and unanswered when its first-response promise runs out.
        sla_breached_at = None
        answered_or_closed = first_responded_at or resolved_at or self.now
        if answered_or_closed > due and due + timedelta(minutes=1) <= self.now:
            sla_breached_at = due + timedelta(seconds=rng.randint(1, 59))
            event(
                sla_breached_at, TicketEventKind.TIMER, None, visible=False, data={"timer": "first_response_breached"}
            )

        # Labels, team hand-overs and the rating.
        if self.label_ids and rng.random() < 0.08:
            chosen = sorted(rng.sample(self.label_ids, k=rng.choice((1, 1, 2))))
            batch.labels.extend((new_id(TicketLabel), ticket_id, label_id) for label_id in chosen)
            event(
                at(rng.randint(60, max(61, end))),
                TicketEventKind.LABELS,
                agent_id,
                visible=False,
                data={"added": chosen, "removed": []},
            )
        team = ""
        if is_open and agent_id is not None and rng.random() < 0.04:
            team = rng.choice(Team.values)
            event(
                last_event_at + timedelta(minutes=2),
                TicketEventKind.TEAM,
                agent_id,
                visible=False,
                reason="请协助核实" if language == "zh-hans" else "Please check",
                data={"team": team, "previous_team": ""},
            )
        if resolved_at is not None and rng.random() < 0.4:
            rated_at = min(resolved_at + timedelta(seconds=rng.randint(MINUTE, DAY)), self.now)
            weights = (4, 3, 8, 25, 60) if status == S.REFUNDED else (35, 20, 20, 15, 10)
            score = rng.choices((1, 2, 3, 4, 5), weights)[0]
            comment = rng.choice(RATING_COMMENTS[language]) if rng.random() < 0.3 else ""
            batch.ratings.append((new_id(SatisfactionRating), ticket_id, score, comment, rated_at))
            event(rated_at, TicketEventKind.RATING, buyer_id, reason=comment, data={"score": score})

        if approved is not None and status in (S.REFUND_PENDING, S.REFUNDED):
            assert payout_requested_at is not None
            succeeded = status == S.REFUNDED
            batch.payouts.append(
                (
                    new_id(Payout),
                    ticket_id,
                    approved,
                    PayoutStatus.SUCCEEDED if succeeded else PayoutStatus.REQUESTED,
                    uuid.UUID(int=rng.getrandbits(128), version=4),
                    1,
                    "fake",
                    f"FAKE-{rng.getrandbits(40):010x}" if succeeded else "",
                    None,
                    "",
                    payout_requested_at,
                    paid_out_at or payout_requested_at,
                    paid_out_at,
                )
            )

        # The chat: a system message, the buyer first, the agent from the first response on.
        conversation_id = new_id(Conversation)
        chat_end = last_event_at
        if is_open:
            chat_end = min(last_event_at + timedelta(seconds=rng.randint(0, 3 * HOUR)), self.now)
        elif resolved_at is not None:
            chat_end = min(resolved_at + timedelta(seconds=rng.randint(0, HOUR)), self.now)
        span = max(int((chat_end - created).total_seconds()), message_count + 2)
        times = sorted(created + timedelta(seconds=rng.randint(2, span)) for _ in range(max(message_count - 1, 0)))
        senders: list[int | None] = []
        if message_count:
            times.insert(0, created + timedelta(seconds=1))
            senders.append(None)
        answered_from = None
        if first_responded_at is not None and message_count >= 2:
            answered_from = next((i for i in range(1, message_count) if times[i] >= first_responded_at), None)
            answered_from = max(answered_from or message_count - 1, 1)
            times[answered_from] = max(first_responded_at, times[answered_from - 1])
        for index in range(1, message_count):
            if answered_from is None or index < answered_from:
                senders.append(buyer_id)
            elif index == answered_from:
                senders.append(agent_id)
            else:
                senders.append(agent_id if rng.random() < 0.45 else buyer_id)
        opener = rng.choice(BUYER_OPENERS[language][reason])
        last_buyer_reply: datetime | None = None
        told_tracking = rng.random() < 0.5  # half the buyers also write the tracking number in the chat
        for seq, (when, sender) in enumerate(zip(times, senders, strict=True), start=1):
            if sender is None:
                # The "ticket created" message the outbox posts, keyed as tickets.notifications keys it.
                body, kind_ = CREATED_TEXT[language].format(number=number), MessageKind.SYSTEM
                client_id = system_message_key(ticket_id=ticket_id, event="created")
            else:
                kind_, client_id = MessageKind.TEXT, uuid.UUID(int=rng.getrandbits(128), version=4)
                if sender == buyer_id and tracking and shipped_at and when >= shipped_at and not told_tracking:
                    body, told_tracking = SHIPPED_TEXT[language].format(tracking=tracking), True
                elif sender == buyer_id:
                    body = opener if seq == 2 else self._text(BUYER_FOLLOW_UPS[language], language)
                else:
                    body = self._text(AGENT_REPLIES[language], language).format(agent=agent_name)
            batch.messages.append(
                (new_id(Message), conversation_id, seq, kind_, sender, body, "{}", False, client_id, when)
            )
        last_seq = message_count
        trailing_buyer = 0
        for sender in reversed(senders):
            if sender != buyer_id:
                break
            trailing_buyer += 1
        next_breached = None
        if is_open and first_responded_at is not None and trailing_buyer and last_seq:
            waiting_seq = last_seq - trailing_buyer + 1
            last_buyer_reply = times[waiting_seq - 1]
            if (
                answered_from is not None
                and waiting_seq > answered_from
                and last_buyer_reply + self.next_sla < self.now
            ):
                next_breached = last_buyer_reply + self.next_sla + timedelta(seconds=rng.randint(1, 59))
                event(
                    next_breached,
                    TicketEventKind.TIMER,
                    None,
                    visible=False,
                    data={
                        "timer": NEXT_RESPONSE_RULE,
                        "since_seq": waiting_seq,
                        "waiting_since": last_buyer_reply.isoformat(),
                    },
                )
        last_message_at = times[-1] if times else None
        batch.conversations.append((conversation_id, ticket_id, last_seq, last_message_at, created))
        buyer_read = last_seq
        if is_open and senders and senders[-1] == agent_id and rng.random() < 0.3:
            buyer_read = last_seq - 1  # the agent's latest answer, not read yet
        batch.participants.append(
            (new_id(Participant), conversation_id, buyer_id, ParticipantRole.BUYER, last_seq, buyer_read, created)
        )
        for seat in (previous_agent, agent_id):
            if seat is None or assign_offset is None:
                continue
            read = last_seq - trailing_buyer if is_open and seat == agent_id else last_seq
            batch.participants.append(
                (new_id(Participant), conversation_id, seat, ParticipantRole.AGENT, last_seq, read, at(assign_offset))
            )

        committed = approved if approved is not None and status in COMMITTED_STATUSES else 0
        batch.orders.append(
            (
                order_id,
                buyer_id,
                f"{paid_at:%Y%m%d}{self.order_seq:010d}",
                shipping,
                paid_total,
                paid_at,
                delivered_at,
                buyer_name,
                rng.choice(ADDRESSES).format(n=rng.randint(1, 999)),
                committed,
                paid_at,
            )
        )
        batch.items.extend((i, order_id, sku, title, price, qty, "") for i, sku, title, price, qty in lines)
        batch.ticket_items.extend((new_id(RefundTicketItem), ticket_id, i, q) for i, q, _p in asked)
        updated_at = max([row[-1] for row in events] + ([last_message_at] if last_message_at else []))
        batch.tickets.append(
            (
                ticket_id,
                order_id,
                buyer_id,
                kind,
                reason,
                opener,
                status,
                agent_id,
                requested,
                approved if status in COMMITTED_STATUSES else None,
                refund_shipping_fee and approved is not None,
                carrier,
                tracking,
                shipped_at,
                received_at,
                condition,
                language,
                created,
                updated_at,
                due,
                first_responded_at,
                sla_breached_at,
                next_breached,
                resolved_at,
                team,
            )
        )
        batch.events.extend(events)

    def _text(self, pool: list[str], language: str) -> str:
        count = self.rng.choice((1, 1, 1, 2, 2, 3))
        return ("" if language == "zh-hans" else " ").join(self.rng.sample(pool, k=min(count, len(pool))))


def message_counts(rng: random.Random, paths: list[int], total: int) -> list[int]:
    """Messages per ticket summing to exactly `total`: longer histories talk more."""
    # A long tail: one conversation in a hundred goes on and on.
    weights = [(len(PATHS[p][2]) + 2) * rng.uniform(0.4, 1.6) * (6 if rng.random() < 0.01 else 1) for p in paths]
    floor = 1 if total >= len(paths) else 0
    left = total - floor * len(paths)
    scale = left / sum(weights) if weights else 0
    counts = [floor + int(w * scale) for w in weights]
    for index in rng.sample(range(len(paths)), k=min(total - sum(counts), len(paths))) if paths else []:
        counts[index] += 1
    while sum(counts) < total:  # only when the remainder exceeds the ticket count (tiny data sets)
        counts[rng.randrange(len(counts))] += 1
    return counts


# --- the command -----------------------------------------------------------------------------------------------


class Command(BaseCommand):
    help = "Fill the database with a large realistic data set (100,000 tickets, 1,000,000 messages by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tickets", type=int, default=100_000)
        amount = parser.add_mutually_exclusive_group()
        amount.add_argument("--messages-per-ticket", type=float, default=None, help="average (default 10)")
        amount.add_argument("--messages", type=int, default=None, help="total messages (default tickets × 10)")
        parser.add_argument("--buyers", type=int, default=None, help="default: tickets / 5, at least 1")
        parser.add_argument("--agents", type=int, default=40)
        parser.add_argument("--days", type=int, default=180, help="how far back tickets go")
        parser.add_argument("--seed", type=int, default=2026, help="random seed: the same seed, the same data")
        parser.add_argument("--batch-size", type=int, default=2_000, help="tickets written per batch")
        parser.add_argument("--force", action="store_true", help="replace bulk data already in the database")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        tickets: int = options["tickets"]
        if options["messages"] is not None:
            total_messages = options["messages"]
        else:
            total_messages = round(tickets * (options["messages_per_ticket"] or 10))
        buyers = options["buyers"] or max(1, tickets // 5)
        agents = options["agents"]
        if tickets < 1 or total_messages < 0 or buyers < 1 or agents < 1 or options["days"] < 1:
            raise CommandError("--tickets, --buyers, --agents and --days must be at least 1, --messages at least 0.")
        check_paths()
        user_model = get_user_model()
        if user_model.objects.filter(username__startswith=PREFIX).exists():
            if not options["force"]:
                raise CommandError(
                    "This database already has bulk data (users named bulk-*). Use --force to replace it."
                )
            self._say("removing the earlier bulk data", started)
            with transaction.atomic():
                remove_bulk_data()
        rng = random.Random(options["seed"])
        now = timezone.now().replace(microsecond=0)
        writer = Writer()
        with transaction.atomic():
            people = self._people(rng, buyers=buyers, agents=agents, now=now, days=options["days"])
            label_ids = self._labels_and_replies(people)
            self._say(f"{buyers:,} buyers and {agents:,} agents created", started)
            weights = [weight for _final, weight, _steps in PATHS]
            paths = rng.choices(range(len(PATHS)), weights, k=tickets)
            counts = message_counts(rng, paths, total_messages)
            generator = Generator(
                rng=rng, writer=writer, people=people, now=now, days=options["days"], label_ids=label_ids
            )
            batch_size = max(1, options["batch_size"])
            written_messages = 0
            # Building an index once is much cheaper than growing it row by row (the trigram index on
            # message text most of all): the plain indexes of the big tables are rebuilt after the load.
            suspended = writer.suspend_indexes(BULK_TABLES) if tickets >= 5_000 else []
            for start in range(0, tickets, batch_size):
                batch = Batch()
                for index in range(start, min(start + batch_size, tickets)):
                    generator.add_ticket(batch, path=paths[index], message_count=counts[index])
                self._write(writer, batch)
                written_messages += len(batch.messages)
                done = min(start + batch_size, tickets)
                self._say(f"{done:,} / {tickets:,} tickets, {written_messages:,} messages", started)
            if suspended:
                self._say(f"rebuilding {len(suspended)} indexes", started)
                writer.restore_indexes(suspended)
            self._say("committing", started)
        self._analyse(started)
        summary = ", ".join(f"{model.__name__} {n:,}" for model, n in writer.rows.items())
        self.stdout.write(
            self.style.SUCCESS(
                f"Bulk data ready in {time.monotonic() - started:.1f} s: {tickets:,} tickets, "
                f"{written_messages:,} messages ({summary})."
            )
        )

    def _say(self, text: str, started: float) -> None:
        self.stdout.write(f"[{time.monotonic() - started:7.1f} s] {text}")
        self.stdout.flush()

    def _people(self, rng: random.Random, *, buyers: int, agents: int, now: datetime, days: int) -> People:
        ensure_role_groups()
        user_model = get_user_model()
        password = make_password(PASSWORD)  # one hash for everybody: seeding stays fast
        joined_before = now - timedelta(days=days + 30)

        def user(username: str, first: str, last: str, *, staff: bool = False) -> Any:
            return user_model(
                username=username,
                first_name=first,
                last_name=last,
                email=f"{username}@example.com",
                password=password,
                is_staff=staff,
                date_joined=joined_before - timedelta(days=rng.randint(0, 900)),
            )

        buyer_rows, languages = [], []
        for n in range(buyers):
            english = rng.random() < 0.15
            if english:
                first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
            else:
                first, last = rng.choice(GIVEN_NAMES), rng.choice(SURNAMES)
            buyer_rows.append(user(f"{PREFIX}b{n + 1:06d}", first, last))
            languages.append("en" if english else "zh-hans")
        buyer_users = user_model.objects.bulk_create(buyer_rows, batch_size=5_000)
        agent_users = user_model.objects.bulk_create(
            [user(f"{PREFIX}a{n + 1:03d}", rng.choice(GIVEN_NAMES), rng.choice(SURNAMES)) for n in range(agents)]
        )
        finance, warehouse, manager = user_model.objects.bulk_create(
            [
                user(f"{PREFIX}finance", "芳", "刘"),
                user(f"{PREFIX}warehouse", "强", "赵"),
                user(f"{PREFIX}manager", "静", "孙", staff=True),
            ]
        )
        groups = {role: Group.objects.get(name=role.value) for role in Role}
        membership = user_model.groups.through
        memberships = [membership(user_id=u.pk, group_id=groups[Role.BUYER].pk) for u in buyer_users]
        memberships += [membership(user_id=u.pk, group_id=groups[Role.AGENT].pk) for u in agent_users]
        memberships += [
            membership(user_id=finance.pk, group_id=groups[Role.FINANCE].pk),
            membership(user_id=warehouse.pk, group_id=groups[Role.WAREHOUSE].pk),
            membership(user_id=manager.pk, group_id=groups[Role.MANAGER].pk),
        ]
        membership.objects.bulk_create(memberships, batch_size=5_000)
        AgentProfile.objects.bulk_create(AgentProfile(user_id=u.pk, max_open_tickets=100) for u in agent_users)
        Presence.objects.bulk_create(
            Presence(user_id=u.pk, last_seen_at=now - timedelta(minutes=rng.randint(5, 600))) for u in agent_users
        )
        return People(
            buyers=[
                (u.pk, u.get_full_name() if lang == "en" else f"{u.last_name}{u.first_name}", lang)
                for u, lang in zip(buyer_users, languages, strict=True)
            ],
            agents=[(u.pk, u.first_name) for u in agent_users],
            finance=finance.pk,
            warehouse=warehouse.pk,
            manager=manager.pk,
        )

    def _labels_and_replies(self, people: People) -> list[int]:
        """The labels and team replies (shared with whatever else is there: created when missing, never changed),
        and two personal replies per bulk agent."""
        label_ids = [
            Label.objects.get_or_create(name=name, defaults={"colour": colour})[0].pk for name, colour in LABELS
        ]
        for title, language, body in TEAM_REPLIES:
            if not CannedReply.objects.filter(owner=None, title=title, language=language).exists():
                CannedReply.objects.create(owner=None, title=title, language=language, body=body)
        CannedReply.objects.bulk_create(
            CannedReply(owner_id=agent_id, title=title, language="zh-hans", body=body)
            for agent_id, name in people.agents
            for title, body in (
                ("开场白", f"您好，我是客服{name}，请问有什么可以帮您？"),
                ("结束语", "感谢您的耐心，祝您生活愉快！如有问题随时联系我们。"),
            )
        )
        return label_ids

    def _write(self, writer: Writer, batch: Batch) -> None:
        writer.write(Order, ORDER_COLUMNS, batch.orders)
        writer.write(OrderItem, ITEM_COLUMNS, batch.items)
        writer.write(RefundTicket, TICKET_COLUMNS, batch.tickets)
        writer.write(RefundTicketItem, TICKET_ITEM_COLUMNS, batch.ticket_items)
        writer.write(TicketEvent, EVENT_COLUMNS, batch.events)
        writer.write(Conversation, CONVERSATION_COLUMNS, batch.conversations)
        writer.write(Participant, PARTICIPANT_COLUMNS, batch.participants)
        writer.write(Message, MESSAGE_COLUMNS, batch.messages)
        writer.write(Payout, PAYOUT_COLUMNS, batch.payouts)
        writer.write(SatisfactionRating, RATING_COLUMNS, batch.ratings)
        writer.write(TicketLabel, TICKET_LABEL_COLUMNS, batch.labels)

    def _analyse(self, started: float) -> None:
        """Fresh statistics and visibility map for the planner (VACUUM (ANALYZE)), once the rows are committed.

        Inside a caller's transaction (a test) nothing is analysed: ANALYZE writes the tables' row counts in place,
        so they would outlive a rollback and mislead the planner about the tables' real size afterwards.
        """
        if connection.vendor != "postgresql":
            return
        if connection.in_atomic_block:
            self._say("not analysed: inside a transaction (run VACUUM ANALYZE after it commits)", started)
            return
        self._say("vacuuming and analysing", started)
        tables = [model._meta.db_table for model in BULK_TABLES] + [get_user_model()._meta.db_table]
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(table)}")


# Tables the bulk rows live in, children first: the order in which they are removed.
BULK_TABLES: list[type[models.Model]] = [
    Message,
    Participant,
    Conversation,
    TicketLabel,
    SatisfactionRating,
    Payout,
    TicketEvent,
    RefundTicketItem,
    RefundTicket,
    OrderItem,
    Order,
]
BUYER_PATH: dict[type[models.Model], str] = {
    Message: "conversation__ticket__buyer",
    Participant: "conversation__ticket__buyer",
    Conversation: "ticket__buyer",
    TicketLabel: "ticket__buyer",
    SatisfactionRating: "ticket__buyer",
    Payout: "ticket__buyer",
    TicketEvent: "ticket__buyer",
    RefundTicketItem: "ticket__buyer",
    RefundTicket: "buyer",
    OrderItem: "order__buyer",
    Order: "buyer",
}


def _bulk(model: type[models.Model], path: str) -> models.QuerySet[Any]:
    return model._default_manager.filter(**{f"{path}__username__startswith": PREFIX})


def remove_bulk_data() -> None:
    """Delete the rows of bulk buyers' tickets (and what else points at them), then the bulk users.

    The big tables go by plain DELETE statements; whatever else refers to bulk tickets (notes, outbox, files:
    rows that work on the bulk data left) and the users themselves go through the ORM, which follows the cascades.
    """
    for parent, path in (
        (RefundTicket, "buyer"),
        (Conversation, "ticket__buyer"),
        (Message, "conversation__ticket__buyer"),
    ):
        for relation in parent._meta.related_objects:
            related = relation.related_model
            if not isinstance(related, type) or related in BULK_TABLES or relation.many_to_many:
                continue
            _bulk(related, f"{relation.field.name}__{path}").delete()
    for model in BULK_TABLES:
        queryset = _bulk(model, BUYER_PATH[model])
        queryset._raw_delete(queryset.db)
    get_user_model().objects.filter(username__startswith=PREFIX).delete()

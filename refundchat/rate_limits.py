"""Fixed-window counters in the cache, and the limits on new tickets and uploads (docs/security.md, "Rate limits").

Chat sending has its own token bucket (messaging/ratelimit.py) and the API its per-token throttles
(refundchat/api/throttles.py); these are for the slower actions counted per hour or day.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


def window_state(*, key: str, window: int) -> tuple[int, int]:
    """(hits in the current window, seconds until it ends); (0, 0) when no window is open."""
    entry = cache.get(key)
    if entry is None:
        return 0, 0
    count, started = entry
    return count, max(1, int(started + window - time.time()))


def do_hit(*, key: str, window: int) -> int:
    """Count one hit; return the hits in the window. The window starts at its first hit and expires with it.

    Not atomic: two racing hits may count once, which only matters by one.
    """
    now = time.time()
    count, started = cache.get(key) or (0, now)
    cache.set(key, (count + 1, started), timeout=max(1, int(started + window - now)))
    return count + 1


def wait_text(seconds: int) -> str:
    if seconds >= 3600:
        hours = math.ceil(seconds / 3600)
        return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}


def check_new_ticket_allowed(*, buyer_id: int) -> None:
    """At most REFUNDCHAT_TICKETS_PER_DAY tickets per buyer in any 24 hours, counted in the database."""
    from tickets.models import RefundTicket
    from tickets.services import TicketError

    limit = settings.REFUNDCHAT_TICKETS_PER_DAY
    since = timezone.now() - timedelta(days=1)
    if RefundTicket.objects.filter(buyer_id=buyer_id, created_at__gte=since).count() >= limit:
        raise TicketError(
            ngettext(
                "You have opened %(count)d refund request in the last 24 hours, the most allowed. "
                "Continue in an open request or try again tomorrow.",
                "You have opened %(count)d refund requests in the last 24 hours, the most allowed. "
                "Continue in an open request or try again tomorrow.",
                limit,
            )
            % {"count": limit}
        )


def do_take_upload_slot(*, user_id: int) -> None:
    """Count a new upload; refuse it (429) past REFUNDCHAT_UPLOADS_PER_HOUR per user."""
    from media import errors
    from media.errors import UploadError

    key, window = f"rate:uploads:{user_id}", 3600
    count, wait = window_state(key=key, window=window)
    if count >= settings.REFUNDCHAT_UPLOADS_PER_HOUR:
        raise UploadError(
            errors.TOO_MANY_REQUESTS,
            "too_many_uploads",
            _("You have sent too many files in the last hour. Try again in %(wait)s.") % {"wait": wait_text(wait)},
        )
    do_hit(key=key, window=window)

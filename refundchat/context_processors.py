from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from tickets.roles import can_use_console


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    return {"is_console_user": bool(user is not None and can_use_console(user))}

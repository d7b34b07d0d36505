from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from refundchat.health import READY_CHECKS, run_checks
from tickets.roles import can_use_console


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Staff land in the console, buyers on their orders."""
    if can_use_console(request.user):
        return redirect("console:queue")
    return redirect("tickets:order_list")


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return _checks_response(run_checks())


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness for a load balancer: database, channel layer, broker reachable and every migration applied."""
    return _checks_response(run_checks(READY_CHECKS))


def _checks_response(checks: dict[str, str]) -> JsonResponse:
    healthy = all(result == "ok" for result in checks.values())
    down = [name for name, result in checks.items() if result != "ok"]
    return JsonResponse(
        {"status": "ok" if healthy else "down", "down": down, "checks": checks}, status=200 if healthy else 503
    )

"""What a caller may do: the web's rules (tickets.roles, the services' own checks) plus a token's scopes.

Views name their resource (`api_resource`); a token must hold "<resource>:read" for safe methods and
"<resource>:write" for the rest. The user behind the request (the token's user) needs the same role and
permissions as on the web. Objects of other buyers are looked up through the buyer's own selectors, so
they are 404, never 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.utils.translation import gettext as _
from rest_framework import permissions
from rest_framework.request import Request

from refundchat.api import tokens
from tickets import selectors
from tickets.models import IntegrationToken, RefundTicket
from tickets.roles import can_handle_tickets, can_use_console

if TYPE_CHECKING:  # rest_framework.views imports the permission classes of the settings
    from rest_framework.views import APIView


class TokenScope(permissions.BasePermission):
    """A token reaches only the resources, and the kind of access, its scopes list."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        token = request.auth
        if not isinstance(token, IntegrationToken):
            return True  # a browser session: the user's own rights apply
        resource: str = getattr(view, "api_resource", "")
        write = request.method not in permissions.SAFE_METHODS
        self.message = (
            _("This token may not change %(resource)s.") if write else _("This token may not read %(resource)s.")
        ) % {"resource": resource}
        return bool(resource) and tokens.has_scope(token=token, resource=resource, write=write)


class ConsoleUser(permissions.BasePermission):
    """Staff who may open the agent console (agents, finance, warehouse, managers)."""

    message = _("Only staff using the console may do this.")

    def has_permission(self, request: Request, view: APIView) -> bool:
        return can_use_console(request.user)


class TicketHandler(permissions.BasePermission):
    """Staff who claim and answer tickets (agents)."""

    message = _("You do not have permission to handle tickets.")

    def has_permission(self, request: Request, view: APIView) -> bool:
        return can_handle_tickets(request.user)


def is_staff_reader(user: Any) -> bool:
    """Sees every ticket and order (the console's view), not only their own."""
    return can_use_console(user)


def visible_ticket(*, user: Any, ticket_id: int) -> RefundTicket:
    """The ticket as `user` may see it: any ticket for console staff, else only the buyer's own (404 otherwise)."""
    if is_staff_reader(user):
        return selectors.get_console_ticket(ticket_id=ticket_id)
    return selectors.get_buyer_ticket(buyer=user, ticket_id=ticket_id)


def api_permissions(*extra: type[permissions.BasePermission]) -> list[type[permissions.BasePermission]]:
    """The default permissions (an authenticated caller, a token's scopes) plus a view's own."""
    return [permissions.IsAuthenticated, TokenScope, *extra]


def api_user(request: Request) -> User:
    """The caller behind a request that passed IsAuthenticated (a session's user or a token's)."""
    user = request.user
    assert isinstance(user, User), "only for views behind IsAuthenticated"
    return user

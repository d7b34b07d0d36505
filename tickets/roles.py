"""Who is who: the staff groups and the permissions each one holds.

Roles are Django groups, so a manager can see and audit them in the admin; the
code asks for permissions, never for group names.
"""

from __future__ import annotations

import enum

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest


class Role(enum.StrEnum):
    BUYER = "buyer"
    AGENT = "agent"
    FINANCE = "finance"
    WAREHOUSE = "warehouse"
    MANAGER = "manager"


# Permissions ("app_label.codename") granted to each staff group. A manager may
# view every model in the admin and change nothing.
GROUP_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.BUYER: (),
    Role.AGENT: (
        "tickets.use_console",
        "tickets.handle_ticket",
        "tickets.view_refundticket",
        "tickets.view_order",
    ),
    Role.FINANCE: ("tickets.use_console", "tickets.manage_payout", "tickets.view_refundticket", "tickets.view_order"),
    Role.WAREHOUSE: (
        "tickets.use_console",
        "tickets.receive_return",
        "tickets.view_refundticket",
        "tickets.view_order",
    ),
    # plus view_* of every model, added by ensure_role_groups
    Role.MANAGER: (
        "tickets.use_console",
        "tickets.arbitrate",
        "tickets.change_agentprofile",
        "tickets.manage_team_replies",  # in the console; the admin stays view-only for managers
        "tickets.view_reports",  # the report pages of the admin (issue #8)
    ),
}

AnyUser = User | AnonymousUser


class AuthenticatedRequest(HttpRequest):
    """The request of a view behind login_required: its user is a real account."""

    user: User


def can_use_console(user: AnyUser) -> bool:
    return bool(user.is_authenticated and user.has_perm("tickets.use_console"))


def can_handle_tickets(user: AnyUser) -> bool:
    return bool(user.is_authenticated and user.has_perm("tickets.handle_ticket"))


def ensure_role_groups() -> None:
    """Create or update the role groups with exactly their permissions (idempotent)."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    # Permissions are normally created after `migrate`; make sure they exist
    # even when this runs inside a fresh test database.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)

    for role, names in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        wanted = set(names)
        permissions = [
            Permission.objects.get(content_type__app_label=name.split(".")[0], codename=name.split(".")[1])
            for name in wanted
        ]
        if role is Role.MANAGER:
            permissions += list(Permission.objects.filter(codename__startswith="view_"))
        group.permissions.set(permissions)

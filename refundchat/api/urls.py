"""/api/v1/ (the resources), /api/schema/ (OpenAPI 3) and /api/docs/ (Swagger UI, served offline)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from media.api import AttachmentView, TicketAttachmentsView
from messaging.api import TicketMessagesView
from tickets.api import CannedReplyViewSet, OrderViewSet, TicketViewSet, WebhookSubscriptionViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("orders", OrderViewSet, basename="order")
router.register("tickets", TicketViewSet, basename="ticket")
router.register("canned-replies", CannedReplyViewSet, basename="canned-reply")
router.register("webhooks", WebhookSubscriptionViewSet, basename="webhook")

v1 = [
    *router.urls,
    path("tickets/<int:ticket_id>/messages/", TicketMessagesView.as_view(), name="ticket-messages"),
    path("tickets/<int:ticket_id>/attachments/", TicketAttachmentsView.as_view(), name="ticket-attachments"),
    path("attachments/<int:attachment_id>/", AttachmentView.as_view(), name="attachment-detail"),
]


@csrf_exempt  # it changes nothing; a POST to a wrong address gets the API's 404, not the CSRF page
def not_found(request: HttpRequest, path: str) -> JsonResponse:
    """Any other /api/ address: the API's error body, not the site's HTML 404 page."""
    return JsonResponse({"code": "not_found", "message": _("Not found.")}, status=404)


urlpatterns = [
    path("v1/", include((v1, "api"), namespace="v1")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file: the CSP allows no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^(?P<path>.*)$", not_found),
]

from django.urls import path

from tickets import csat_views, privacy_views, views

app_name = "tickets"

urlpatterns = [
    path("orders/", views.order_list, name="order_list"),
    path("orders/<str:order_no>/", views.order_detail, name="order_detail"),
    path("orders/<str:order_no>/refund/", views.refund_request, name="refund_request"),
    path("refunds/", views.ticket_list, name="ticket_list"),
    path("refunds/<int:ticket_id>/", views.ticket_detail, name="ticket_detail"),
    path("refunds/<int:ticket_id>/actions/<slug:name>/", views.ticket_transition, name="ticket_transition"),
    path("refunds/<int:ticket_id>/rating/", csat_views.rate_ticket, name="rate_ticket"),
    # Privacy rights (issue #9): export and erasure.
    path("account/privacy/", privacy_views.privacy_page, name="privacy"),
    path("account/privacy/export/", privacy_views.request_export, name="privacy_export"),
    path("account/privacy/export/<str:token>/", privacy_views.download_export, name="privacy_export_download"),
    path("account/privacy/erase/", privacy_views.erase_account, name="privacy_erase"),
    path("api/v1/payouts/callback/", views.payout_callback, name="payout_callback"),
]

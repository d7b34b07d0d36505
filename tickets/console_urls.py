from django.urls import path

from tickets import console_views

app_name = "console"

urlpatterns = [
    path("", console_views.queue, name="queue"),
    path("tickets/<int:ticket_id>/", console_views.ticket_workspace, name="ticket"),
    path("tickets/<int:ticket_id>/claim/", console_views.claim, name="claim"),
    path("tickets/<int:ticket_id>/transfer/", console_views.transfer, name="transfer"),
    path("tickets/<int:ticket_id>/unassign/", console_views.unassign, name="unassign"),
    path("tickets/<int:ticket_id>/actions/<slug:name>/", console_views.transition, name="transition"),
    path("payouts/", console_views.payouts_list, name="payouts"),
    path("payouts/<int:payout_id>/<slug:decision>/", console_views.payout_decision, name="payout_decision"),
    path("returns/", console_views.returns_list, name="returns"),
]

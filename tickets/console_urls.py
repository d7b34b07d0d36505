from django.urls import path

from tickets import console_views, workspace_views

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

# The agents' workspace (tickets/workspace_views.py).
urlpatterns += [
    path("tickets/<int:ticket_id>/notes/", workspace_views.add_note, name="add_note"),
    path("tickets/<int:ticket_id>/labels/", workspace_views.set_labels, name="set_labels"),
    path("tickets/<int:ticket_id>/team/", workspace_views.team_transfer, name="team_transfer"),
    path("tickets/<int:ticket_id>/assistant/handback/", workspace_views.assistant_handback, name="assistant_handback"),
    path("mentions/", workspace_views.mentions, name="mentions"),
    path("mentions/seen/", workspace_views.mentions_seen, name="mentions_seen"),
    path("replies/", workspace_views.canned_list, name="canned_list"),
    path("replies/new/", workspace_views.canned_edit, name="canned_new"),
    path("replies/<int:reply_id>/", workspace_views.canned_edit, name="canned_edit"),
    path("replies/<int:reply_id>/delete/", workspace_views.canned_delete, name="canned_delete"),
    path("search/", workspace_views.search_view, name="search"),
]

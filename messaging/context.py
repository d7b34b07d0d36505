"""What a page needs to show a live chat: history, permissions and the client's strings."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from messaging.models import MESSAGE_MAX_LENGTH, Conversation
from messaging.selectors import recent_messages


def chat_labels() -> dict[str, Any]:
    """Strings the chat script shows, in the page's language."""
    return {
        "sending": _("Sending"),
        "sent": _("Sent"),
        "delivered": pgettext("message status", "Delivered"),
        "read": pgettext("message status", "Read"),
        "failed": _("Not sent"),
        "retry": _("Retry"),
        "typing": _("%(name)s is typing…"),
        "online": _("Online"),
        "away": _("Away"),
        "offline": _("Offline"),
        "last_seen": _("last seen %(time)s"),
        "agent": _("Agent"),
        "buyer": _("Buyer"),
        "empty": _("The message is empty."),
        "too_long": _("The message is too long (at most %(max)d characters).") % {"max": MESSAGE_MAX_LENGTH},
        "order": _("Order"),
        "paid_total": _("Paid total"),
        "assistant": _("Refund assistant"),
        "assistant_upload": _("Send photos or a video"),
        "upload": upload_labels(),
    }


def upload_labels() -> dict[str, str]:
    """Strings of the composer's uploads and voice notes (static/js/uploads.js)."""
    return {
        "uploading": _("Uploading %(percent)s"),
        "processing": _("Processing…"),
        "paused": _("Paused"),
        "pause": _("Pause"),
        "resume": _("Resume"),
        "cancel": _("Cancel"),
        "retry": _("Retry"),
        "interrupted": _("Interrupted: choose the same file again to continue where it stopped."),
        "choose_again": _("Choose the file"),
        "not_same_file": _("This is not the same file: choose “%(name)s”."),
        "offline": _("No connection: the upload goes on when the network is back."),
        "failed": _("The file could not be sent."),
        "too_short": _("Hold the button down to record a voice note."),
        "no_microphone": _("The microphone is not available."),
        "voice_note": _("Voice note"),
        "document": _("Document"),
        "download": _("Download original"),
    }


def call_labels() -> dict[str, str]:
    """Strings of the call buttons, banner and in-call view (static/js/calls.js, templates/messaging/_call.html)."""
    return {
        "voice": _("Voice call"),
        "video": _("Video call"),
        "incoming_voice": _("%(name)s is calling you (voice)"),
        "incoming_video": _("%(name)s is calling you (video)"),
        "queue_request_voice": _("%(name)s asks for a voice call about %(ticket)s"),
        "queue_request_video": _("%(name)s asks for a video call about %(ticket)s"),
        "calling": _("Calling…"),
        "calling_queue": _("Waiting for an agent to answer…"),
        "connecting": _("Connecting…"),
        "connected": _("Connected"),
        "reconnecting": _("Connection unstable, reconnecting…"),
        "mute": _("Mute"),
        "unmute": _("Unmute"),
        "camera_off": _("Camera off"),
        "camera_on": _("Camera on"),
        "switch_camera": _("Switch camera"),
        "hang_up": _("Hang up"),
        "quality_good": _("Good connection"),
        "quality_fair": _("Fair connection"),
        "quality_poor": _("Poor connection"),
        "stats": _("Round trip %(rtt)s ms · loss %(loss)s%% · %(kbps)s kbit/s"),
        "ended": _("Call ended (%(duration)s)."),
        "declined": _("The call was declined."),
        "missed": _("No answer. You can leave a message in the chat."),
        "busy": _("The other side is in another call. Try again later or write in the chat."),
        "cancelled": _("Call cancelled."),
        "lost": _("The call was cut off: the connection was lost."),
        "answered_elsewhere": _("Answered in another window."),
        "agent_offline": _("The agent is offline: calls are not possible now. Leave a message in the chat."),
        "camera_denied": _(
            "The camera is blocked for this site, so the call is voice only. Allow the camera in the browser's "
            "site settings to use video."
        ),
        "camera_missing": _("No camera was found, so the call is voice only."),
        "microphone_denied": _(
            "The microphone is blocked for this site. Allow it in the browser's site settings to call, or keep "
            "writing in the chat."
        ),
        "microphone_missing": _("No microphone was found: calls need one. You can keep writing in the chat."),
        "unsupported": _("This browser cannot make calls. You can keep writing in the chat."),
        "failed": _("The call could not be connected. You can keep writing in the chat."),
        "answer": _("Answer"),
        "answer_voice": _("Answer with voice only"),
        "decline": _("Decline"),
    }


def chat_context(*, conversation: Conversation, viewer: User, can_send: bool) -> dict[str, Any]:
    return {
        "conversation": conversation,
        "can_send": can_send,
        # Participants report delivered/read positions; staff who only look in do not.
        "is_participant": conversation.participants.filter(user=viewer).exists(),
        "chat_messages": recent_messages(conversation_id=conversation.pk),
        "chat_labels": chat_labels(),
        "call_labels": call_labels(),
    }

"""Uploads and attachments in the admin: read-only, with the checksum staff compare evidence by."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import FileField
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from media import selectors
from media.models import DERIVED_FIELDS, Attachment, Upload
from tickets.admin import ReadOnlyInlineMixin


class ReadOnlyAdmin(ReadOnlyInlineMixin, admin.ModelAdmin):
    """Evidence is never edited by hand: uploads and attachments are written by the services only."""


@admin.register(Upload)
class UploadAdmin(ReadOnlyAdmin):
    list_display = ("id", "ticket", "uploader", "filename", "status", "offset", "length", "created_at", "expires_at")
    list_filter = ("status", "detected_kind")
    search_fields = ("id", "filename", "uploader__username", "sha256")
    list_select_related = ("ticket", "uploader")
    fields = (
        "id",
        "ticket",
        "uploader",
        "status",
        "refusal_code",
        "filename",
        "filetype",
        "detected_kind",
        "offset",
        "length",
        "metadata",
        "sha256",
        "created_at",
        "expires_at",
        "completed_at",
    )
    readonly_fields = fields


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "ticket", "uploader", "kind", "content_type", "size", "status", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("sha256", "filename", "uploader__username")
    list_select_related = ("ticket", "uploader")
    fields = (
        "ticket",
        "uploader",
        "message",
        "kind",
        "content_type",
        "size",
        "sha256",
        "original_link",
        "derived_links",
        "filename",
        "status",
        "failure_reason",
        "width",
        "height",
        "duration_ms",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description=_("original"))
    def original_link(self, obj: Attachment) -> str:
        url = reverse("media:attachment_file", args=[obj.pk])
        return format_html('<a href="{}?download=1">{}</a>', url, _("Download the original"))

    @admin.display(description=_("derived files"))
    def derived_links(self, obj: Attachment) -> str:
        # The shareable copy is the one to pass on: the original may carry the buyer's GPS position.
        links = []
        for variant in DERIVED_FIELDS:
            url = selectors.attachment_url(attachment=obj, variant=variant)
            field = Attachment._meta.get_field(variant)
            if url and isinstance(field, FileField):
                links.append((url, field.verbose_name))
        return format_html_join(" · ", '<a href="{}">{}</a>', links) or "-"

from django.urls import path

from media import views

app_name = "media"

urlpatterns = [
    # tus 1.0.0 (docs/uploads.md): the creation URL, and one URL per upload.
    path("api/v1/uploads/", views.upload_collection, name="uploads"),
    path("api/v1/uploads/<uuid:upload_id>", views.upload_resource, name="upload"),
    # Originals and derived files, permission-checked; never a public URL.
    path("attachments/<int:attachment_id>/original", views.attachment_file, name="attachment_file"),
    path("attachments/<int:attachment_id>/retry", views.attachment_retry, name="attachment_retry"),
    path("attachments/<int:attachment_id>/<str:variant>", views.attachment_file, name="attachment_variant"),
]

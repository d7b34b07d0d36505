from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.static import serve

from refundchat import views

admin.site.site_header = _("RefundChat administration")
admin.site.site_title = _("RefundChat administration")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("console/", include("tickets.console_urls")),
    path("", include("tickets.urls")),
    path("", include("media.urls")),
    # Product pictures are public catalogue images; buyers' evidence is never served from here.
    path("media/products/<path:path>", serve, {"document_root": settings.MEDIA_ROOT / "products"}),
]

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.static import serve

from refundchat import auth_views as auth_views_local
from refundchat import views
from refundchat.metrics import metrics_view

admin.site.site_header = _("RefundChat administration")
admin.site.site_title = _("RefundChat administration")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Readiness and Prometheus metrics for the load balancer and the monitoring (docs/deploy.md).
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    # Throttled login with the staff TOTP step (refundchat/auth_views.py); the admin logs in through it too.
    path("accounts/login/", auth_views_local.LoginView.as_view(), name="login"),
    path("accounts/login/code/", auth_views_local.login_code, name="login_code"),
    path("accounts/two-factor/", auth_views_local.two_factor_setup, name="two_factor_setup"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/login/", auth_views_local.admin_login, name="admin_login"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("console/", include("tickets.console_urls")),
    path("", include("tickets.urls")),
    path("", include("media.urls")),
    # The REST API, its OpenAPI schema and docs (refundchat/api/, docs/api.md); after the apps' own api/v1/ views.
    path("api/", include("refundchat.api.urls")),
    # Product pictures are public catalogue images; buyers' evidence is never served from here.
    path("media/products/<path:path>", serve, {"document_root": settings.MEDIA_ROOT / "products"}),
]

"""Response headers added by refundchat/middleware.py."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_pages_let_only_this_origin_use_camera_and_microphone():
    response = Client().get("/accounts/login/")
    policy = response.headers["Permissions-Policy"]
    assert "camera=(self)" in policy
    assert "microphone=(self)" in policy
    assert "geolocation=()" in policy

"""TURN credentials in coturn's `use-auth-secret` scheme (the "TURN REST API")."""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.contrib.auth.models import User

from messaging import calls


def test_username_is_expiry_colon_user_id():
    creds = calls.turn_credentials(user_id=42, secret="north", ttl_seconds=3600, now=1_700_000_000.9)
    assert creds["username"] == "1700003600:42"


def test_credential_is_base64_hmac_sha1_of_the_username():
    creds = calls.turn_credentials(user_id=7, secret="north", ttl_seconds=600, now=1_000_000)
    expected = base64.b64encode(hmac.new(b"north", b"1000600:7", hashlib.sha1).digest()).decode()
    assert creds == {"username": "1000600:7", "credential": expected}
    # A fixed vector, computed outside Python (`printf 1000600:7 | openssl dgst -binary -sha1 -hmac north | base64`),
    # so a change of encoding (hex instead of base64, another digest) is caught too.
    assert creds["credential"] == "seUVsl9cwjaqnoZzXDFFsF5kMb0="


def test_another_secret_or_user_gives_another_credential():
    a = calls.turn_credentials(user_id=7, secret="north", ttl_seconds=600, now=0)
    assert calls.turn_credentials(user_id=7, secret="south", ttl_seconds=600, now=0)["credential"] != a["credential"]
    assert calls.turn_credentials(user_id=8, secret="north", ttl_seconds=600, now=0)["credential"] != a["credential"]


def test_ice_servers_without_configuration_are_empty(settings):
    settings.REFUNDCHAT_STUN_URLS = []
    settings.REFUNDCHAT_TURN_URLS = []
    assert calls.ice_servers(user=User(pk=1)) == []


def test_turn_needs_a_secret(settings):
    settings.REFUNDCHAT_STUN_URLS = []
    settings.REFUNDCHAT_TURN_URLS = ["turn:turn.example.com"]
    settings.REFUNDCHAT_TURN_SECRET = ""
    assert calls.ice_servers(user=User(pk=1)) == []


def test_ice_servers_expire_after_the_ttl(settings, monkeypatch):
    settings.REFUNDCHAT_STUN_URLS = ["stun:a"]
    settings.REFUNDCHAT_TURN_URLS = ["turn:b", "turns:b:5349"]
    settings.REFUNDCHAT_TURN_SECRET = "north"
    settings.REFUNDCHAT_TURN_TTL_SECONDS = 300
    monkeypatch.setattr(calls.time, "time", lambda: 1000.0)
    servers = calls.ice_servers(user=User(pk=5))
    assert servers[1]["urls"] == ["turn:b", "turns:b:5349"]
    assert servers[1]["username"] == "1300:5"

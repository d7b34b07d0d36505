"""Every user-facing string has a zh-hans translation: a new string without one fails here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("refundchat", "tickets", "messaging", "media", "templates")


def test_zh_hans_catalogue_covers_every_marked_string(tmp_path: Path) -> None:
    # Extract into a copy, so the check never rewrites the developer's catalogue.
    for name in SOURCES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    env = {**os.environ, "REFUNDCHAT_VAR_DIR": str(tmp_path / "var"), "REFUNDCHAT_CHANNEL_LAYER": "memory"}
    env["DJANGO_SETTINGS_MODULE"] = "refundchat.settings"
    env.pop("DATABASE_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete", "--ignore", "var/*", "-v0"],
        cwd=tmp_path,
        env=env,
        check=True,
    )
    catalogue = tmp_path / "refundchat" / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    untranslated = subprocess.run(
        ["msgattrib", "--untranslated", "--no-wrap", str(catalogue)], capture_output=True, text=True, check=True
    ).stdout
    fuzzy = subprocess.run(
        ["msgattrib", "--only-fuzzy", "--no-wrap", str(catalogue)], capture_output=True, text=True, check=True
    ).stdout
    assert entries(untranslated) == [], "untranslated strings: run `make messages` and translate them"
    assert entries(fuzzy) == [], "fuzzy translations: review them in refundchat/locale/zh_Hans/LC_MESSAGES/django.po"
    subprocess.run(["msgfmt", "--check", "-o", os.devnull, str(catalogue)], check=True)


def entries(po_text: str) -> list[str]:
    """The msgids of a catalogue excerpt, without the header entry msgattrib always keeps."""
    return [line for line in po_text.splitlines() if line.startswith("msgid ") and line != 'msgid ""']

"""An email backend for the server processes of the fault tests: Django's file backend, writing one file per
connection into the folder named by REFUNDCHAT_TEST_MAIL_DIR (refundchat/settings.py reads no EMAIL_FILE_PATH).

The stack selects it with DJANGO_EMAIL_BACKEND=tests.faults.mailbox.EmailBackend, so the test process can see what
the Celery worker sent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend

MAIL_DIR_VARIABLE = "REFUNDCHAT_TEST_MAIL_DIR"
BACKEND = "tests.faults.mailbox.EmailBackend"


class EmailBackend(FileEmailBackend):
    def __init__(self, *args: Any, file_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, file_path=file_path or os.environ[MAIL_DIR_VARIABLE], **kwargs)


def sent_mail(folder: Path) -> list[str]:
    """The messages in the folder, one string each (a file may hold several, separated by a line of dashes)."""
    messages: list[str] = []
    for path in sorted(folder.glob("*.log")):
        for chunk in path.read_text(errors="replace").split("-" * 79):
            if chunk.strip():
                messages.append(chunk)
    return messages

"""Structured logs: every line carries the id of the request it belongs to and, where known, the ticket and user ids.

The ids live in one context variable. An HTTP request sets it in `RequestContextMiddleware` (the id comes from
nginx's X-Request-ID or is made here, and goes back in the response), a WebSocket connection in
`websocket_context` (for the connection's whole life), a Celery task from the headers of its message: the
publishing side copies its ids into every task it sends (`before_task_publish`), so a task's lines share the
id of the request that queued it. `ContextFilter` puts the ids on each record; `JsonFormatter` writes one JSON
object a line (docs/deploy.md, "Logs").

No personal data: the ids are database keys, never names, addresses or message text, and bank card or
resident ID numbers that reach a log message anyway are masked (messaging/pii.py).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from django.http import HttpRequest, HttpResponse
from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
FIELDS = ("request_id", "ticket_id", "user_id")
# A request id from outside (nginx's $request_id, a client's) is kept only when it looks like one.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# The Celery message header that carries the publisher's ids to the task.
TASK_HEADER = "refundchat_log"

access_logger = logging.getLogger("refundchat.access")

LogContext = dict[str, Any]
_context: ContextVar[LogContext | None] = ContextVar("refundchat_log_context", default=None)


def current() -> LogContext:
    """The ids of what runs now (a copy)."""
    return dict(_context.get() or {})


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: str | None) -> str | None:
    return value if value and _VALID_REQUEST_ID.match(value) else None


def bind(**fields: Any) -> None:
    """Add ids to the current context until it ends (the request, the connection, the task)."""
    _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


@contextmanager
def bound(**fields: Any) -> Iterator[LogContext]:
    """A fresh context with these ids for the block, the previous one restored after."""
    token = _context.set({k: v for k, v in fields.items() if v is not None})
    try:
        yield _context.get() or {}
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Puts the context's ids on every record, and masks card and ID numbers in the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get() or {}
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, context.get(name))
        for name in ("task", "task_id"):
            if name in context and not hasattr(record, name):
                setattr(record, name, context[name])
        if record.request_id is None:  # type: ignore[attr-defined]
            record.request_id = "-"
        _mask_personal_numbers(record)
        return True


def _mask_personal_numbers(record: logging.LogRecord) -> None:
    from messaging.pii import mask_sensitive

    try:
        message = record.getMessage()
    except Exception:  # a broken format string: the handler reports it; leave the record alone
        return
    masked = mask_sensitive(message)
    if masked != message:
        record.msg, record.args = masked, None


class JsonFormatter(BaseJsonFormatter):
    """One JSON object a line: time, level, logger, message, the context's ids, and any `extra`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(*args, **kwargs)


# --- HTTP -------------------------------------------------------------------------------------------------


class RequestContextMiddleware:
    """The request's id (from nginx, or new) for every line it logs and in its response; the user's id once
    authentication is done and the ticket's when the URL names one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = clean_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.perf_counter()
        with bound(request_id=request_id):
            response = self.get_response(request)
            # The access log line, with the ids: the view's name, never the path (it can hold an order number).
            match = request.resolver_match
            access_logger.info(
                "%s %s %s",
                request.method,
                match.view_name if match is not None else "unmatched",
                response.status_code,
                extra={"status": response.status_code, "duration_ms": round((time.perf_counter() - started) * 1000)},
            )
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: dict[str, Any]
    ) -> None:
        user = getattr(request, "user", None)
        bind(
            user_id=user.pk if user is not None and user.is_authenticated else None,
            ticket_id=view_kwargs.get("ticket_id"),
        )


request_context = RequestContextMiddleware


# --- WebSocket ----------------------------------------------------------------------------------------------

ASGIApp = Callable[..., Any]


def websocket_context(app: ASGIApp) -> ASGIApp:
    """ASGI middleware (inside the auth middleware): the connection's request id and user id for its whole life.
    nginx's X-Request-ID of the upgrade request is used when there is one."""

    async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        headers = dict(scope.get("headers", []))
        request_id = clean_request_id(headers.get(b"x-request-id", b"").decode("latin-1")) or new_request_id()
        user = scope.get("user")
        user_id = user.pk if user is not None and user.is_authenticated else None
        started = time.monotonic()
        with bound(request_id=request_id, user_id=user_id):
            try:
                return await app(scope, receive, send)
            finally:
                seconds = time.monotonic() - started
                access_logger.info("websocket closed", extra={"duration_ms": round(seconds * 1000)})

    return middleware


# --- Celery ---------------------------------------------------------------------------------------------------

_task_tokens: dict[str, Token[LogContext | None]] = {}


def _before_task_publish(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    context = {k: v for k, v in current().items() if k in FIELDS}
    if headers is not None and context:
        headers.setdefault(TASK_HEADER, context)


def _task_prerun(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
    sent = getattr(task.request, TASK_HEADER, None) if task is not None else None
    context = dict(sent) if isinstance(sent, dict) else {}
    context.setdefault("request_id", f"task-{task_id}")
    context.update(task=getattr(task, "name", None), task_id=task_id)
    if task_id is not None:
        _task_tokens[task_id] = _context.set(context)


def _task_postrun(task_id: str | None = None, **_kwargs: Any) -> None:
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        _context.reset(token)


def connect_celery_signals() -> None:
    from celery import signals

    signals.before_task_publish.connect(_before_task_publish, weak=False, dispatch_uid="refundchat.logging.publish")
    signals.task_prerun.connect(_task_prerun, weak=False, dispatch_uid="refundchat.logging.prerun")
    signals.task_postrun.connect(_task_postrun, weak=False, dispatch_uid="refundchat.logging.postrun")

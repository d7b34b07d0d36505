"""Daphne with a graceful stop: `python -m refundchat.serve` takes Daphne's own arguments.

On SIGTERM (systemd stop, honcho's Ctrl-C, a deploy) plain Daphne cancels every consumer and drops its sockets:
clients see 1006 and wait out their backoff. This server instead

1. stops listening, so nginx sends new connections to the other processes at once;
2. closes every WebSocket with 1012 ("service restart"): static/js/realtime.js reconnects at once, through
   nginx to another process, and catches up from its last seq (docs/protocol.md);
3. waits up to REFUNDCHAT_SHUTDOWN_GRACE_SECONDS (10) for the consumers' disconnect handlers and for requests
   in flight (an upload chunk) to finish, and only then lets Daphne cancel what is left.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, cast

from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import defer, reactor

logger = logging.getLogger("refundchat.serve")  # not "__main__" under python -m
# Twisted's reactor is typed as its interfaces, whose zope-style methods mypy misreads.
_reactor = cast(Any, reactor)

CLOSE_SERVICE_RESTART = 1012
GRACE_SECONDS = float(os.environ.get("REFUNDCHAT_SHUTDOWN_GRACE_SECONDS", "10"))
POLL_SECONDS = 0.05


class GracefulServer(Server):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listening_ports: list[Any] = []

    def listen_success(self, port: Any) -> None:
        self.listening_ports.append(port)
        super().listen_success(port)

    def kill_all_applications(self) -> defer.Deferred[Any]:
        """Daphne's "before shutdown" trigger: hand the clients over, wait, then cancel what is left."""
        for port in self.listening_ports:
            port.stopListening()
        sockets = [
            protocol
            for protocol in list(self.connections)
            if isinstance(protocol, WebSocketProtocol) and protocol.state == protocol.STATE_OPEN
        ]
        for protocol in sockets:
            # Below autobahn's sendClose, which lets an application send only 1000 and 3000-4999.
            protocol.sendCloseFrame(code=CLOSE_SERVICE_RESTART, reasonUtf8=b"service restart", isReply=False)
        logger.info("shutting down: closed %d WebSocket(s) with 1012, waiting for requests in flight", len(sockets))
        drained: defer.Deferred[None] = defer.Deferred()
        deadline = time.monotonic() + GRACE_SECONDS

        def check() -> None:
            busy = [
                details
                for details in self.connections.values()
                if details.get("application_instance") is not None and not details["application_instance"].done()
            ]
            if busy and time.monotonic() < deadline:
                _reactor.callLater(POLL_SECONDS, check)
                return
            if busy:
                logger.warning("shutting down: %d request(s) still running after the grace period", len(busy))
            drained.callback(None)

        check()
        drained.addCallback(lambda _: super(GracefulServer, self).kill_all_applications())
        drained.addBoth(self._forget_metrics)
        return drained

    @staticmethod
    def _forget_metrics(result: Any) -> Any:
        """This process' open-socket gauge no longer counts (prometheus-client multiprocess mode)."""
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), directory)
        return result


class GracefulCommandLineInterface(CommandLineInterface):
    server_class = GracefulServer


def daphne_arguments(argv: list[str]) -> list[str]:
    """Daphne's arguments, with our default for how long a WebSocket handshake may wait for its application.

    Daphne refuses a handshake its application has not accepted within 5 s, with HTTP 403. In a reconnect storm a
    thousand handshakes queue at once; a 403 tells a client it is not allowed in, where the server was only busy.
    A client that tires of waiting gives up by itself and retries with backoff (the test client after 10 s)."""
    if any(arg.startswith("--websocket_connect_timeout") for arg in argv):
        return argv
    return ["--websocket_connect_timeout", os.environ.get("REFUNDCHAT_WEBSOCKET_CONNECT_TIMEOUT", "30"), *argv]


if __name__ == "__main__":
    GracefulCommandLineInterface().run(daphne_arguments(sys.argv[1:]))

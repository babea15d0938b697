"""The exporter's HTTP server: prometheus_client's WSGI app on a threading server of the stdlib.

The socket is bound before anything is served, so a taken port is the command's clear error,
not a log line. Request threads are daemons: SIGTERM or Ctrl-C ends the process at once, and a
scrape in flight is simply not answered (Prometheus scrapes again).
"""

from __future__ import annotations

import socket
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, make_wsgi_app


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape (one every few seconds, for ever)."""

    def log_message(self, format: str, *args: Any) -> None:
        """Drop the line."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


def bind(host: str, port: int, registry: CollectorRegistry) -> WSGIServer:
    """A server for ``registry``'s metrics (at ``/metrics``, and any other path) on host:port.

    Raises:
        OSError: the address cannot be listened on (taken, or not an address of this machine).
    """
    server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
    server = server_class((host, port), _QuietHandler)
    server.set_app(make_wsgi_app(registry))
    return server

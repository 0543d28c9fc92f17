"""Serve a real optuna-dashboard on a storage."""

from __future__ import annotations

import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna_dashboard

from hpsearch._errors import HpsearchError
from hpsearch._study import open_storage


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # A browser opens several connections at once; one thread per request keeps it responsive.
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (wsgiref's name)
        pass


def make_dashboard_server(storage: str, host: str = "127.0.0.1", port: int = 8080) -> WSGIServer:
    """Build (but do not start) an optuna-dashboard WSGI server on ``storage``.

    Args:
        storage: Storage URL; an SQLite file must already exist.
        host: Address to bind.
        port: Port to bind (0 picks a free one; read it from ``server.server_port``).

    Returns:
        The bound server; call ``serve_forever()`` on it.

    Raises:
        HpsearchError: The storage cannot be opened or the address cannot be bound.
    """
    app = optuna_dashboard.wsgi(open_storage(storage, must_exist=True))
    try:
        return make_server(
            host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
    except OSError as e:
        raise HpsearchError(
            f"cannot serve the dashboard on {host}:{port}: {e.strerror or e}"
        ) from None


def serve_dashboard(storage: str, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve optuna-dashboard on ``storage`` until Ctrl-C.

    The dashboard reads the storage on every request, so it shows a running study live.
    """
    server = make_dashboard_server(storage, host, port)
    print(
        f"optuna-dashboard on {storage}: http://{host}:{server.server_port}/ (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

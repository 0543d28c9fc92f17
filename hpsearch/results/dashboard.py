"""Serve a real optuna-dashboard on a storage, with the artifact store next to it.

What each study shows there (note, figures, PNG artifacts) is written by ``_publish``.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.types import WSGIApplication

import optuna
import optuna_dashboard
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import BaseStorage

from hpsearch._compat import serialize_frozen_trial
from hpsearch.errors import HpsearchError
from hpsearch.results.publish import artifact_dir
from hpsearch.signals import stop_on_signals
from hpsearch.study.storage import describe_storage, open_storage


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # A browser opens several connections at once; one thread per request keeps it responsive.
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (wsgiref's name)
        pass


_STUDY_PATH = re.compile(r"/api/studies/(\d+)")


def feasible_best_trials(app: WSGIApplication, storage: BaseStorage) -> WSGIApplication:
    """Wrap optuna-dashboard so that a study's best trials leave out infeasible ones.

    optuna-dashboard 0.21 shows each trial's constraints, but picks the best trials (the
    Pareto front) without them, so an MDMM run that missed its L2 budget could show as best.
    For a study whose trials carry constraints, this replaces the ``best_trials`` of the
    study's API answer with Optuna's own, which count feasible trials only.
    """

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        match = _STUDY_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return app(environ, start_response)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured.update(status=status, headers=headers, exc_info=exc_info)
            return lambda data: None

        body = b"".join(app(environ, capture))
        if captured["status"].startswith("200"):
            body = _with_feasible_best(body, int(match.group(1)), storage)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return wrapped


def _with_feasible_best(body: bytes, study_id: int, storage: BaseStorage) -> bytes:
    trials = storage.get_all_trials(study_id, deepcopy=False)
    if not any(t.constraints for t in trials):
        return body
    study = optuna.load_study(study_name=storage.get_study_name_from_id(study_id), storage=storage)
    if len(study.directions) > 1:
        best = study.best_trials
    else:
        try:
            best = [study.best_trial]
        except ValueError:  # no feasible trial
            best = []
    attrs = storage.get_study_system_attrs(study_id)
    data = json.loads(body)
    data["best_trials"] = [serialize_frozen_trial(study_id, t, attrs) for t in best]
    return json.dumps(data).encode()


def make_dashboard_server(storage: str, host: str = "127.0.0.1", port: int = 8080) -> WSGIServer:
    """Build (but do not start) an optuna-dashboard WSGI server on ``storage``.

    Args:
        storage: Storage URL; an SQLite file must already exist. Its artifacts are served from
            :func:`hpsearch.artifact_dir` (``<file>-artifacts`` next to an SQLite file).
        host: Address to bind.
        port: Port to bind (0 picks a free one; read it from ``server.server_port``).

    Returns:
        The bound server; call ``serve_forever()`` on it.

    Raises:
        HpsearchError: The storage cannot be opened or the address cannot be bound.
    """
    opened = open_storage(storage, must_exist=True, read_only=True)
    try:  # bound before the artifacts folder is made: a port in use leaves nothing behind
        server = _ThreadingServer((host, port), _QuietHandler)
    except OSError as e:
        raise HpsearchError(
            f"cannot serve the dashboard on {host}:{port}: {e.strerror or e}"
        ) from None
    try:
        folder = artifact_dir(storage)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a read-only disk: the study is served, without its PNG artifacts
            print(
                f"hpsearch: warning: no artifacts: cannot create {str(folder)!r} ({e.strerror})",
                file=sys.stderr,
            )
            folder = Path(tempfile.mkdtemp(prefix="hpsearch-no-artifacts-"))
        server.set_app(
            feasible_best_trials(
                optuna_dashboard.wsgi(opened, artifact_store=FileSystemArtifactStore(str(folder))),
                opened,
            )
        )
    except BaseException:
        server.server_close()
        raise
    return server


def serve_dashboard(storage: str, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve optuna-dashboard on ``storage`` until Ctrl-C.

    The dashboard reads the storage on every request, so it shows a running study live.
    """
    server = make_dashboard_server(storage, host, port)
    print(
        f"optuna-dashboard on {describe_storage(storage)}: "
        f"http://{host}:{server.server_port}/ (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    stop_on_signals()  # as `run` sets its own: also where SIGINT was ignored at start-up
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

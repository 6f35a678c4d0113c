"""``diffmatte serve``: a local matting web app and HTTP API (the optional extra ``diffmatte[serve]``).

* engine.py: the model, one worker thread, the bounded queue and deadlines (no HTTP);
* app.py: the Starlette routes, limits and error answers;
* static/: the page (plain HTML, JS and canvas; nothing loaded from elsewhere).

Example:
    >>> from diffmatte.server import ServerConfig, run_server            # doctest: +SKIP
    >>> run_server(ServerConfig(port=8000), print)                         # doctest: +SKIP
"""
from __future__ import annotations

import errno
import importlib.util
import ipaddress
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from ..errors import DiffMatteError
from .engine import ServerConfig

if TYPE_CHECKING:
    from ..pipeline import DiffMatte

__all__ = [
    "ServerConfig",
    "SERVE_INSTALL_HINT",
    "check_installed",
    "is_loopback",
    "bind",
    "run_server",
    "BackgroundServer",
]

SERVE_INSTALL_HINT = 'pip install "diffmatte[serve]"'


def check_installed() -> None:
    """Raise DiffMatteError naming the extra when the web stack is missing."""
    missing = [m for m in ("starlette", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise DiffMatteError(f"diffmatte serve needs {', '.join(missing)}, which is not installed: {SERVE_INSTALL_HINT}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line DiffMatteError (port in use, unknown host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise DiffMatteError(f"--host {host}: not an address of this machine ({e.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        why = "the port is in use; pass another --port" if e.errno == errno.EADDRINUSE else e.strerror
        raise DiffMatteError(f"cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/"


def run_server(
    config: ServerConfig,
    model: "DiffMatte",
    model_name: str,
    echo: Callable[[str], None],
    sock: socket.socket | None = None,
) -> None:
    """Serve until interrupted. ``echo`` gets the URL line once the socket listens."""
    from .engine import Engine

    sock = sock or bind(config.host, config.port)
    engine = Engine(config, model)
    server = _uvicorn_server(engine, model_name)
    echo(f"diffmatte serve: {url_of(sock, config.host)} (model {model_name}; Ctrl+C stops)")
    try:
        server.run(sockets=[sock])
    finally:
        engine.close()
        sock.close()


def _uvicorn_server(engine: Any, model_name: str) -> Any:
    import uvicorn

    from .app import create_app

    app = create_app(engine, model_name)
    return uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5, lifespan="off")
    )


class BackgroundServer:
    """The server on a background thread of this process (tests, benchmarks, notebooks).

    Example:
        >>> with BackgroundServer(ServerConfig(port=0), model, "mine") as server:   # doctest: +SKIP
        ...     print(server.url)
    """

    def __init__(self, config: ServerConfig, model: "DiffMatte", model_name: str = "model") -> None:
        from .engine import Engine

        self.engine = Engine(config, model)
        self._sock = bind(config.host, config.port)
        self.url = url_of(self._sock, config.host).rstrip("/")
        self._server = _uvicorn_server(self.engine, model_name)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the background server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self.engine.close()
        self._sock.close()

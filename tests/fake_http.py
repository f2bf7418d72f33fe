"""The scripted local HTTP server under the fake Overpass and the fake elevation tile server.

``ScriptedHTTPServer`` is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) in a
daemon thread, answering one HTTP method (``method``). Each request gets an action; the ones
every fake knows are handled here:

- "drop": close the connection without sending anything (not even a status line);
- "stall": sleep ``stall_s`` seconds, then act as "ok";
- ``("status", code)`` or ``("status", code, {header: value})``: that status, with a short
  body (``status_body``, of type ``status_content_type``) and the headers given.

A subclass says what a request is and what it serves: ``_action_for(request)`` counts the
request and picks its action (``_scripted_action()`` gives the next one of ``script``, then
``default``), and ``_answer(action, request)`` gives (status, headers, body) for every other
action ("ok" included). With ``lifetime_s``, the server shuts itself down after that many
seconds in case a test forgets to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class ScriptedHTTPServer:
    """Base of the fake servers: ``base_url``, ``script``, ``default``; start, close, ``with``."""

    method = "GET"
    status_body = "status {status}\n"
    status_content_type = "text/plain"

    def __init__(self, script: Iterable = (), default="ok", stall_s: float = 2.0,
                 lifetime_s: float | None = None) -> None:
        self.script = list(script)
        self.default = default
        self.stall_s = stall_s
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._watchdog = None
        if lifetime_s is not None:
            self._watchdog = threading.Timer(lifetime_s, self._server.shutdown)
            self._watchdog.daemon = True
        self._closed = False

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._thread.start()
        if self._watchdog is not None:
            self._watchdog.start()
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _scripted_action(self):
        """The next action of ``script``, or ``default`` once it is used up (hold ``_lock``)."""
        return self.script.pop(0) if self.script else self.default

    def _action_for(self, request: BaseHTTPRequestHandler):
        """Count ``request`` and return its action."""
        raise NotImplementedError

    def _answer(self, action, request: BaseHTTPRequestHandler) -> tuple[int, dict, bytes]:
        """(status, headers, body) for an action other than "drop", "stall" and "status"."""
        raise NotImplementedError

    def _respond(self, request: BaseHTTPRequestHandler) -> None:
        action = self._action_for(request)
        if action == "drop":
            request.close_connection = True
            return  # no status line at all: the client sees the connection close
        if action == "stall":
            time.sleep(self.stall_s)
            action = "ok"
        if isinstance(action, tuple) and action[0] == "status":
            status = action[1]
            headers = {"Content-Type": self.status_content_type,
                       **(dict(action[2]) if len(action) > 2 else {})}
            body = self.status_body.format(status=status).encode()
        else:
            status, headers, body = self._answer(action, request)
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Connection", "close")
        request.end_headers()
        request.wfile.write(body)
        request.close_connection = True

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        def respond(request: BaseHTTPRequestHandler) -> None:
            fake._respond(request)

        def log_message(request, format, *args) -> None:  # keep test output quiet
            pass

        return type("Handler", (BaseHTTPRequestHandler,), {
            "protocol_version": "HTTP/1.1", "log_message": log_message,
            f"do_{self.method}": respond})

"""Loopback servers that misbehave on purpose: one that accepts and never answers, one that
answers every request with a fixed body, and two that trickle their answer a byte at a time (one
without end, one to its end, slowly). For the hostile-input tests of the CLI."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte (a hung API server or S3)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(conn)  # held open, never read from or written to

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


class _QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _HandlerServer:
    """A threading HTTP server on 127.0.0.1 running `handler`, for as long as the `with` lasts."""

    def __init__(self, handler):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class GarbageServer(_HandlerServer):
    """Answers every GET with status 200 and `body_for(path)` (bytes or a JSON-able value)."""

    def __init__(self, body_for):
        class Handler(_QuietHandler):
            def do_GET(self):
                body = body_for(self.path.split("?")[0])
                if not isinstance(body, bytes):
                    body = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)


class SlowAnswerServer(_HandlerServer):
    """Answers every GET with status 200 and `body_for(path)`, one byte every `interval` seconds:
    each answer is complete well within the answer deadline, a command that reads many of them
    takes as long as its overall deadline allows."""

    def __init__(self, body_for, interval: float = 0.04):
        stop = self._stopping = threading.Event()
        self.requests: list[str] = []

        class Handler(_QuietHandler):
            def do_GET(handler):
                path = handler.path.split("?")[0]
                self.requests.append(path)
                body = body_for(path)
                if not isinstance(body, bytes):
                    body = json.dumps(body).encode()
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.flush()
                for i in range(len(body)):
                    if stop.wait(interval):
                        return
                    try:
                        handler.wfile.write(body[i : i + 1])
                        handler.wfile.flush()
                    except OSError:
                        return

        super().__init__(Handler)

    def __exit__(self, *exc):
        self._stopping.set()
        super().__exit__(*exc)


class DripServer(_HandlerServer):
    """Answers every GET with status 200, promises a large JSON body, and sends it one byte every
    `interval` seconds: each byte comes well within any read timeout, the answer never ends."""

    def __init__(self, interval: float = 0.2):
        stop = self._stopping = threading.Event()

        class Handler(_QuietHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(10**6))
                self.end_headers()
                self.wfile.flush()
                while not stop.wait(interval):
                    try:
                        self.wfile.write(b" ")
                        self.wfile.flush()
                    except OSError:
                        return

        super().__init__(Handler)

    def __exit__(self, *exc):
        self._stopping.set()
        super().__exit__(*exc)

"""A real S3-compatible server on loopback for tests: moto in server mode, plus a TCP link that fails.

`MotoServer` runs moto in this process (fast to start); `MotoProcess` runs `python -m moto.server`
as a subprocess that a test can kill. `FaultyLink` is a TCP proxy between boto3 and the server that
cuts every connection (and stops accepting) once it has forwarded a number of bytes towards the
server, or as soon as a byte pattern (e.g. b"latest.json" in a request line) is about to pass.
Point AWS_ENDPOINT_URL at `link.url` to have the failure happen in the middle of real traffic.
"""

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import closing

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def s3_environment(endpoint_url: str, tmp_dir) -> dict[str, str]:
    """Environment for boto3 that reaches only `endpoint_url`, isolated from the host's AWS config."""
    return {
        **DUMMY_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_CONFIG_FILE": str(tmp_dir / "aws-config-absent"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_dir / "aws-credentials-absent"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _post(url: str, body: bytes = b"") -> dict:
    # text/plain: with urllib's default form type, Flask would eat the body moto reads
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read() or b"{}")


class MotoServer:
    """moto's ThreadedMotoServer on 127.0.0.1 and a free port, in this process."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def __enter__(self):
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.port = port
        return self

    def __exit__(self, *exc):
        self._server.stop()

    def reset(self) -> None:
        """Forget every bucket, user and policy (moto's /moto-api/reset)."""
        _post(f"{self.url}/moto-api/reset")

    def enforce_iam(self, enabled: bool) -> None:
        """Check signatures and IAM policies on every later request (moto's /moto-api/reset-auth)."""
        _post(f"{self.url}/moto-api/reset-auth", b"0" if enabled else b"inf")


class MotoProcess:
    """`python -m moto.server` on 127.0.0.1 as a subprocess, so a test can kill it mid-request."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            try:
                _post(f"{self.url}/moto-api/reset")
                return self
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError("moto server did not start within 60 s")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def __exit__(self, *exc):
        self.kill()


class FaultyLink:
    """TCP proxy on 127.0.0.1 that forwards to `target_port` until it is told (or triggered) to cut."""

    def __init__(
        self,
        target_port: int,
        *,
        cut_after_bytes: int | None = None,
        cut_before: bytes | None = None,
        on_cut=None,
    ):
        self.target_port = target_port
        self.cut_after_bytes = cut_after_bytes
        self.cut_before = cut_before
        self.on_cut = on_cut
        self.forwarded = 0  # bytes sent towards the server
        self.cut_done = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.cut_done.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self.cut_done.is_set():
                    client.close()
                    server.close()
                    return
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool):
        tail = b""
        try:
            while chunk := source.recv(65536):
                if upstream:
                    if self.cut_before and self.cut_before in tail + chunk:
                        self.cut()
                        return
                    tail = chunk[-len(self.cut_before) :] if self.cut_before else b""
                    with self._lock:
                        if self.cut_after_bytes is not None:
                            chunk = chunk[: max(0, self.cut_after_bytes - self.forwarded)]
                        self.forwarded += len(chunk)
                        reached = self.cut_after_bytes is not None and self.forwarded >= self.cut_after_bytes
                    if chunk:
                        sink.sendall(chunk)
                    if reached:
                        self.cut()
                        return
                else:
                    sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        """Stop accepting and reset every open connection; runs `on_cut` once, first."""
        with self._lock:
            if self.cut_done.is_set():
                return
            self.cut_done.set()
            sockets, self._sockets = self._sockets, []
        if self.on_cut:
            self.on_cut()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        except OSError:
            pass
        self._listener.close()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self):
        self.cut()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

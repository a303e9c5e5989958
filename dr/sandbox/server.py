"""Run the two-region AWS simulation: in this process (demo, tests) or as a background process.

`python -m dr.sandbox.server --port P` serves until SIGTERM; `dr sandbox start` launches it
detached and records its pid and endpoint in the sandbox state file.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dr.errors import DrError, OperationFailed

DEFAULT_PORT = 4566


def _require_moto():
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise DrError("the sandbox needs moto: pip install 'dr[sandbox]'") from None
    return ThreadedMotoServer


class EmbeddedAws:
    """A moto server on a thread of this process; `with EmbeddedAws() as aws: aws.endpoint`."""

    def __init__(self, port: int = 0):
        self.port = port
        self._server = None
        self.endpoint = ""

    def __enter__(self) -> EmbeddedAws:
        server_cls = _require_moto()
        from dr.obs.logging import silence
        from dr.sandbox import fidelity

        fidelity.apply()  # moto behaves like AWS where dr relies on it (see fidelity/)
        silence("werkzeug")
        self._server = server_cls(ip_address="127.0.0.1", port=self.port, verbose=False)
        with contextlib.redirect_stdout(io.StringIO()):
            self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.stop()


def state_file() -> Path:
    base = os.environ.get("DR_SANDBOX_HOME") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "dr")
    return Path(base) / "sandbox.json"


@dataclass(frozen=True)
class SandboxStatus:
    running: bool
    endpoint: str | None = None
    pid: int | None = None

    def to_dict(self) -> dict:
        return {"running": self.running, "endpoint": self.endpoint, "pid": self.pid}


def _responds(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
        return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def status() -> SandboxStatus:
    path = state_file()
    if not path.exists():
        return SandboxStatus(False)
    info = json.loads(path.read_text())
    if _alive(info["pid"]) and _responds(info["endpoint"]):
        return SandboxStatus(True, info["endpoint"], info["pid"])
    return SandboxStatus(False, info["endpoint"], info["pid"])


def start(port: int = DEFAULT_PORT) -> SandboxStatus:
    current = status()
    if current.running:
        return current
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            raise OperationFailed(f"port {port} on 127.0.0.1 is already in use",
                                  hint="pass --port with a free port")
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    log_path = path.with_suffix(".log")
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dr.sandbox.server", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not _responds(endpoint):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise OperationFailed(f"the sandbox did not start; see {log_path}")
        time.sleep(0.1)
    path.write_text(json.dumps({"pid": proc.pid, "endpoint": endpoint, "port": port}))
    return SandboxStatus(True, endpoint, proc.pid)


def stop() -> SandboxStatus:
    current = status()
    if current.pid and _alive(current.pid):
        os.kill(current.pid, signal.SIGTERM)
        for _ in range(50):
            if not _alive(current.pid):
                break
            time.sleep(0.1)
    state_file().unlink(missing_ok=True)
    return SandboxStatus(False, current.endpoint, current.pid)


def _serve(port: int) -> None:
    stop_requested = False

    def on_term(signum, frame):
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, on_term)
    with EmbeddedAws(port) as aws:
        print(f"dr sandbox serving at {aws.endpoint}", flush=True)
        while not stop_requested:
            time.sleep(0.2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m dr.sandbox.server")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    _serve(parser.parse_args().port)

"""Real servers for tests: `python -m server run` under uvicorn on 127.0.0.1, one or several."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import DATABASE_URL, IS_POSTGRES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a server or worker process: on PostgreSQL it shares the (already migrated)
    test database; on SQLite the processes of one test share their own under `tmp_path/data`."""
    values = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "INFO", **(env or {})}
    if IS_POSTGRES:
        values["DATABASE_URL"] = DATABASE_URL
    else:
        values.pop("DATABASE_URL", None)
    return values


class Server:
    def __init__(
        self, tmp_path: Path, *args: str, env: dict[str, str] | None = None, name: str = "server"
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"{name}.log"
        self.terminated = False
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server", "run", "--port", str(self.port), *args],
            env=process_env(tmp_path, env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 90) -> None:
        # A bound for a loaded machine (a start took 28 s there), not a timing.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready:\n{self.log_path.read_text()}")

    def terminate(self) -> None:
        if not self.terminated:
            self.terminated = True
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: no drain, no clean-up, as when a machine dies."""
        self.terminated = True
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.terminate()
        code = self.process.wait(timeout=30)
        self.log.close()
        return code


class Worker:
    """`python -m server worker` beside a Server (same data folder or database)."""

    def __init__(self, tmp_path: Path, env: dict[str, str] | None = None, name: str = "worker") -> None:
        self.log_path = tmp_path / f"{name}.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server", "worker"],
            env=process_env(tmp_path, env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_started(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while "delivery worker started" not in self.log_path.read_text():
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log_path.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not started:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when a machine dies."""
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.log.close()
        return code

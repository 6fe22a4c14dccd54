"""`python -m server worker` runs the delivery loop on its own and stops cleanly on SIGTERM; the
settings that would let a lease run out under a slow batch are refused at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from server.deliveries import delivery_config, delivery_worker
from tests.conftest import DATABASE_URL, IS_POSTGRES, make_settings


def test_the_worker_command_starts_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "DELIVERY_POLL_SECONDS": "0.1"}
    if IS_POSTGRES:
        env["DATABASE_URL"] = DATABASE_URL
    else:
        env.pop("DATABASE_URL", None)
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            # A loaded machine took 28 s to import and migrate; the wait is a bound, not a timing.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if "delivery worker started" in log.read_text() or process.poll() is not None:
                    break
                time.sleep(0.05)
            assert "delivery worker started (channels: webhook, sms)" in log.read_text(), log.read_text()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert "delivery worker stopped" in log.read_text()
    assert "Traceback" not in log.read_text()


def test_settings_become_the_worker_config() -> None:
    settings = make_settings(
        delivery_batch=10, delivery_lease_seconds=30, delivery_max_attempts=3, delivery_timeout_seconds=5
    )
    worker = delivery_worker(settings)
    assert (worker.config.batch, worker.config.max_attempts) == (10, 3)
    assert worker.config.lease.total_seconds() == 30
    with pytest.raises(ValueError, match="DELIVERY_LEASE_SECONDS"):
        delivery_config(make_settings(delivery_lease_seconds=30, delivery_timeout_seconds=10))

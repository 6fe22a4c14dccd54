"""The command line, run as a newcomer would: seed the demo city twice, create an account, sign in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from identity.models import User
from patrols.models import ChiefAssignment, PatrolArea
from reports.models import Category, Department
from server.seed import load_demo_city
from tests.conftest import DATABASE_URL
from tests.graphql_client import sign_in


def _cli(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env={**os.environ, "DATABASE_URL": DATABASE_URL, "DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _counts() -> tuple[int, ...]:
    return (
        await User.all().count(),
        await Department.all().count(),
        await Category.all().count(),
        await PatrolArea.all().count(),
        await ChiefAssignment.all().count(),
    )


async def test_seed_demo_is_idempotent_and_demo_accounts_sign_in(client, tmp_path):
    first = _cli("seed-demo", tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    after_first = await _counts()
    second = _cli("seed-demo", tmp_path=tmp_path)
    assert second.returncode == 0, second.stderr
    assert await _counts() == after_first
    city = load_demo_city()
    assert after_first[0] == len(city["accounts"]) and after_first[3] == len(city["patrol_areas"])
    tokens = await sign_in(client, "dispatcher", city["password"])
    assert tokens["user"]["role"] == "DISPATCHER"


async def test_create_user_from_the_command_line(client, tmp_path):
    done = _cli(
        "create-user",
        "--role",
        "ADMIN",
        "--username",
        "root.admin",
        tmp_path=tmp_path,
        NEW_USER_PASSWORD="a very long password",
    )
    assert done.returncode == 0, done.stderr
    assert "created ADMIN root.admin" in done.stdout
    assert (await sign_in(client, "root.admin", "a very long password"))["user"]["role"] == "ADMIN"
    again = _cli(
        "create-user",
        "--role",
        "ADMIN",
        "--username",
        "root.admin",
        tmp_path=tmp_path,
        NEW_USER_PASSWORD="a very long password",
    )
    assert again.returncode != 0 and "taken" in again.stderr
    staff = _cli(
        "create-user",
        "--role",
        "STAFF",
        "--username",
        "nobody.staff",
        "--department",
        "no-such-dept",
        tmp_path=tmp_path,
        NEW_USER_PASSWORD="a very long password",
    )
    assert staff.returncode != 0 and "no department" in staff.stderr

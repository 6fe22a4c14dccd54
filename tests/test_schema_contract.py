"""schema.graphql is the API contract phone apps build against: it must match what the server serves,
and it may not break what the last release (schema.released.graphql) promised."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from schema import build_schema
from schema.contract import compare

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "schema.graphql"
RELEASED = ROOT / "schema.released.graphql"


def _served() -> str:
    return build_schema(production=False).as_str()


def _edited(sdl: str, old: str, new: str) -> str:
    assert old in sdl, f"the test's edit no longer applies: {old!r} is not in the schema"
    return sdl.replace(old, new, 1)


def test_committed_schema_matches_the_served_one() -> None:
    assert CONTRACT.read_text(encoding="utf-8") == _served() + "\n", (
        "schema.graphql is out of date: regenerate it with `envcase schema > schema.graphql` and review "
        "the diff (deprecate before removing anything)"
    )


def test_no_breaking_change_since_the_last_release() -> None:
    changes = compare(RELEASED.read_text(encoding="utf-8"), _served())
    assert changes.breaking == [], (
        "the served schema breaks apps built against schema.released.graphql; deprecate instead:\n"
        + "\n".join(changes.lines())
    )


def test_a_removed_field_and_a_removed_argument_are_breaking() -> None:
    released = _served()
    served = _edited(
        released,
        '  """Signed-in accounts, newest first. Admins only."""\n'
        "  users(first: Int! = 20, after: String = null, role: Role = null): UserConnection!\n",
        "",
    )
    served = _edited(
        served,
        "departments(first: Int! = 50, after: String = null): DepartmentConnection!",
        "departments(first: Int! = 50): DepartmentConnection!",
    )
    changes = compare(released, served)
    assert sorted(change.description for change in changes.breaking) == [
        "Argument Query.departments(after:) was removed.",
        "Field Query.users was removed.",
    ]


def test_a_changed_default_is_reported_as_dangerous_only() -> None:
    released = _served()
    served = _edited(released, "departments(first: Int! = 50,", "departments(first: Int! = 20,")
    changes = compare(released, served)
    assert changes.breaking == []
    assert [change.description for change in changes.dangerous] == [
        "Query.departments(first:) has changed defaultValue from 50 to 20."
    ]


def _schema_check(released: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "schema", "--check", "--released", str(released)],
        env={**os.environ, "DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_line_check_fails_on_a_breaking_change(tmp_path: Path) -> None:
    assert _schema_check(RELEASED, tmp_path).returncode == 0
    broken = tmp_path / "released.graphql"
    # The released schema had a field the served one lacks: removing it broke the apps.
    broken.write_text(_edited(_served(), "type Query {\n", "type Query {\n  retiredField: Int\n"))
    done = _schema_check(broken, tmp_path)
    assert done.returncode == 1
    assert "breaking: Field Query.retiredField was removed." in done.stdout
    assert "breaking change(s)" in done.stderr

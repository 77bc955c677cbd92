"""``remedium`` starts at once: ``--help`` imports no command, a command only its own module."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from remedium.cli.main import COMMANDS, app, load


def test_help_lists_every_command_without_importing_them() -> None:
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from remedium.cli.main import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(result.output)\n"
        "heavy = [m for m in ('sqlalchemy', 'alembic', 'fastapi', 'remedium.db.session') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert "HEAVY []" in result.stdout
    for name in COMMANDS:
        assert f" {name} " in result.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_loads_and_its_listed_help_is_its_own(name: str) -> None:
    command = load(name)
    assert command.name == name
    own = (command.help or "").strip().splitlines()[0]
    assert own == COMMANDS[name].help


def test_a_command_runs_through_the_lazy_group() -> None:
    result = CliRunner().invoke(app, ["db", "--help"])
    assert result.exit_code == 0, result.output
    assert "upgrade" in result.output
    unknown = CliRunner().invoke(app, ["no-such-command"])
    assert unknown.exit_code == 2
    assert "No such command" in unknown.output

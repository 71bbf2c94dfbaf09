"""The workbench's one CLI: every command is reachable from ``python -m embedder``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from embedder.cli import main, parser

COMMANDS = ("train", "export", "baselines", "eval", "explore")


def test_help_lists_every_command() -> None:
    text = parser().format_help()
    for command in COMMANDS:
        assert f"\n    {command} " in text, command


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_its_own_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert f"python -m embedder {command}" in capsys.readouterr().out


def test_delegated_command_after_top_level_flags(caplog: pytest.LogCaptureFixture) -> None:
    """``--log-level X baselines list`` reaches the baselines CLI (X is not the command)."""
    assert main(["--log-level", "INFO", "baselines", "list"]) == 0


def test_module_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "embedder", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "baselines" in proc.stdout


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve"])
    assert exit_.value.code == 2

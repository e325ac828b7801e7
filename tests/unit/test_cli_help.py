"""The command's help and output read cleanly: no '<bool>' on flags, no '{data}', no wrapping."""

import pytest
from typer.testing import CliRunner

from npsrisk.cli import app


def _every_command(group, path=()) -> list[list[str]]:
    """The path of every group and command of the app, the app itself first."""
    import typer.main

    click_group = typer.main.get_command(group) if not path else group
    paths = [list(path)]
    for name, command in getattr(click_group, "commands", {}).items():
        paths += _every_command(command, (*path, name))
    return paths


@pytest.mark.parametrize("args", _every_command(app), ids=lambda a: " ".join(a) or "npsrisk")
def test_help_shows_no_bool_type_on_flags_and_plain_argument_names(args):
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "{" not in result.output and "}" not in result.output
    assert "--help" in result.output


def test_usage_names_arguments_in_capitals():
    result = CliRunner().invoke(app, ["demo-data", "--help"])
    assert "npsrisk demo-data [OPTIONS] OUT_DIR" in result.output
    assert "YYYY-MM-DD" in result.output


def test_output_off_a_terminal_is_never_wrapped(monkeypatch):
    from npsrisk.console import make_console

    monkeypatch.delenv("COLUMNS", raising=False)
    console = make_console()
    with console.capture() as captured:
        console.print("wrote report: /" + "very-long-folder-name/" * 20 + "report.md")
    assert len(captured.get().strip().splitlines()) == 1

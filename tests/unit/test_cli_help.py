"""The command's help and output read cleanly: no '<bool>' on flags, no '{data}', no wrapping."""

import pytest
from typer.testing import CliRunner

from npsrisk.cli import app


@pytest.mark.parametrize(
    "args",
    [[], ["demo-data"], ["validate"], ["score"], ["evaluate"], ["report", "themes"], ["text"]],
)
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

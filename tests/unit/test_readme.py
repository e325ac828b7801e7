"""The README stays true to the code: every setting documented, both commands present."""

from pathlib import Path

from pydantic import BaseModel

from npsrisk.settings import Settings

README = (Path(__file__).parents[2] / "README.md").read_text()


def leaf_settings(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from leaf_settings(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_every_setting_is_in_the_configuration_reference():
    missing = [key for key in leaf_settings(Settings) if f"`{key}`" not in README]
    assert not missing


def test_the_ci_script_runs_the_readme_test_command():
    ci = (Path(__file__).parents[2] / ".ci" / "run").read_text()
    command = (
        "python3 -m pip install uv && uv sync --frozen && uv run ruff check . && uv run pytest"
    )
    assert command in README
    assert command in ci

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
        "python3 -m pip install uv && uv sync --frozen --compile-bytecode && "
        "uv run ruff check . && uv run pytest"
    )
    assert command in README
    assert command in ci


def test_the_docs_the_readme_points_at_are_in_the_repository():
    import re

    root = Path(__file__).parents[2]
    links = re.findall(r"\]\(((?:docs|\.\./)[^)]+)\)", README)
    assert {"docs/data-contract.md", "docs/api.md"} <= set(links)
    assert all((root / link).is_file() for link in links)
    assert "../shared/" not in README


def test_the_api_reference_lists_every_published_path_and_error_code():
    from serving.http import PUBLIC_PATHS, STATUS_CODES
    from serving.openapi import ROUTES

    api = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    for path in [*ROUTES, "/model", *PUBLIC_PATHS, "/docs.json"]:
        assert path in api, path
    for code in ("unknown_feature", "invalid_value", "not_ready", "payload_too_large"):
        assert f"`{code}`" in api
    assert {s for s in STATUS_CODES if f"| {s} |" in api} >= {400, 401, 404, 405, 413, 422, 503}

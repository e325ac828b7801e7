from pathlib import Path

import pytest

from npsrisk.settings import ConfigError, load_settings


def test_defaults_put_everything_under_the_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.home_path == tmp_path / "npsrisk-home"
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'npsrisk-home' / 'mlflow.db'}"
    assert settings.training.horizon_days == 90
    # Reading settings has no side effects: the home is created only by commands that write.
    assert not (tmp_path / "npsrisk-home").exists()


def test_yaml_then_environment_override(tmp_path, monkeypatch):
    config = tmp_path / "npsrisk.yaml"
    config.write_text("training:\n  horizon_days: 60\n  max_snapshots: 5\nhome: /tmp/x\n")
    monkeypatch.setenv("NPSRISK_TRAINING__HORIZON_DAYS", "30")
    settings = load_settings(config)
    assert settings.training.horizon_days == 30  # environment beats the file
    assert settings.training.max_snapshots == 5  # the file beats the default
    assert settings.home == Path("/tmp/x")


def test_config_file_is_found_in_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "npsrisk.yaml").write_text("registry:\n  model_name: acme\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().registry.model_name == "acme"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("training:\n  horizon_days: -3\n", "training.horizon_days"),
        ("trainnig:\n  horizon_days: 3\n", "trainnig"),
        ("features:\n  backend: polars\n", "features.backend"),
        ("spark:\n  driver_row_limit: 0\n", "spark.driver_row_limit"),
        ("training: [unclosed\n", "Could not read configuration"),
    ],
)
def test_bad_configuration_names_what_to_fix(tmp_path, yaml_text, expected):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        load_settings(config)


def test_missing_config_file_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NPSRISK_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="NPSRISK_CONFIG"):
        load_settings()

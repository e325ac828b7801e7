"""The service as a Bento: the exported requirements are current, `bentoml build` works offline
into a fresh store, the Bento's code is self-sufficient, and `bentoml serve` answers from it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import API_KEYS, headers
from features.store import FeatureStore
from serving.process import ServiceProcess as Process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "serving" / "requirements.txt"
EXPORT = ["export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", "--no-header"]
PROJECT_PACKAGES = ("npsrisk", "features", "training", "serving", "text_analytics", "demo")
BENTOML = str(Path(sys.executable).parent / "bentoml")


def _pins(text: str) -> set[str]:
    """Normalised requirements of a requirements file (BentoML rewrites quotes and spaces)."""
    from packaging.requirements import Requirement

    return {
        str(Requirement(line.strip()))
        for line in text.splitlines()
        if line.strip() and line[0] not in "# "
    }


def test_requirements_file_is_a_fresh_export_of_the_lock():
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    fresh = subprocess.run(
        [uv, *EXPORT], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert REQUIREMENTS.read_text() == fresh, (
        "serving/requirements.txt is stale; regenerate it with "
        "`uv " + " ".join(EXPORT) + " -o serving/requirements.txt`"
    )


@pytest.fixture(scope="module")
def bento(tmp_path_factory) -> tuple[dict[str, str], Path]:
    """`bentoml build` of the repo into a fresh BENTOML_HOME: (environment, bento folder)."""
    bentoml_home = tmp_path_factory.mktemp("bentoml_home")
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "True"}
    build = subprocess.run(
        [BENTOML, "build", "--output", "tag", str(REPO)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    tag = build.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    assert name == "npsrisk"
    folder = bentoml_home / "bentos" / name / version
    assert folder.is_dir(), f"{tag} not in {bentoml_home}: {build.stdout[-2000:]}"
    return env, folder


def test_the_bento_holds_the_service_code_and_the_requirements(bento):
    _, folder = bento
    src = folder / "src"
    meta = yaml.safe_load((folder / "bento.yaml").read_text())
    assert meta["service"] == "serving.service:NpsRiskService"
    assert meta["name"] == "npsrisk"
    assert (src / "serving" / "service.py").is_file()
    assert (src / "text_analytics" / "themes.yaml").is_file()
    for package in ("npsrisk", "features", "training", "serving", "text_analytics"):
        assert (src / package / "__init__.py").is_file(), package
    for left_out in ("tests", "notebooks", "benchmarks", "demo", "data", "npsrisk-home"):
        assert not (src / left_out).exists(), left_out
    assert not list(src.rglob("*.pyc"))
    bundled = _pins((folder / "env" / "python" / "requirements.txt").read_text())
    missing = _pins(REQUIREMENTS.read_text()) - bundled
    assert not missing, f"pins missing from the bento: {sorted(missing)[:10]}"
    dockerfile = (folder / "env" / "docker" / "Dockerfile").read_text()
    assert "libgomp1" in dockerfile  # LightGBM needs the system OpenMP runtime


def test_the_bento_code_serves_without_the_repository(bento, trained, service):
    """Import the service and load the champion from the Bento's src alone (the repository and
    its editable install removed from sys.path), as a container would."""
    _, folder = bento
    settings, _ = trained
    src = folder / "src"
    probe = f"""
import json, sys
from pathlib import Path
repo = Path({str(REPO)!r}).resolve()
sys.path[:] = [{str(src)!r}] + [p for p in sys.path if p and Path(p).resolve() != repo]
import serving.service
from npsrisk.settings import load_settings
from serving.state import ServingState, load_champion, load_store
settings = load_settings(home={str(settings.home_path)!r})
state = ServingState.build(load_champion(settings), load_store(settings))
cid = state.store.frame["customer_id"].iloc[0]
predictions, unknown, _ = state.predict_ids([cid], True, 3, settings.serving.risk_tiers)
files = {{name: getattr(m, "__file__", None) for name, m in list(sys.modules.items())
          if name.split(".")[0] in {PROJECT_PACKAGES!r}}}
print(json.dumps({{"files": files, "predictions": len(predictions), "unknown": unknown}}))
"""
    run = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=src,
        env={**os.environ, "NPSRISK_HOME": str(settings.home_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["predictions"] == 1 and report["unknown"] == []
    outside = {
        name: path
        for name, path in report["files"].items()
        if path is not None and not Path(path).resolve().is_relative_to(src.resolve())
    }
    assert not outside, f"modules loaded from outside the bento: {outside}"
    assert not any(name.split(".")[0] == "demo" for name in report["files"])


def test_the_openapi_document_builds_where_the_project_is_not_installed(bento):
    _, folder = bento
    src = folder / "src"
    probe = f"""
import importlib.metadata, sys
from pathlib import Path
repo = Path({str(REPO)!r}).resolve()
sys.path[:] = [{str(src)!r}] + [p for p in sys.path if p and Path(p).resolve() != repo]
real = importlib.metadata.version
def version(name):  # the container installs the requirements, not the project itself
    if name == "npsrisk":
        raise importlib.metadata.PackageNotFoundError(name)
    return real(name)
importlib.metadata.version = version
import serving.service
spec = serving.service._spec()
assert spec["paths"]["/predict"], spec
"""
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=src, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]


def bento_process(env: dict[str, str], home: Path, log_path: Path, cwd: Path) -> Process:
    """`bentoml serve npsrisk:latest` from the store in ``env["BENTOML_HOME"]``."""
    keys = {"NPSRISK_API_KEYS": ",".join(API_KEYS)}
    return Process(home, log_path, {**env, **keys}, target="npsrisk:latest", cwd=cwd)


def test_bentoml_serve_from_the_store_answers(bento, trained, service, tmp_path):
    env, folder = bento
    settings, _ = trained
    ids = list(FeatureStore.open(settings.home_path).frame["customer_id"][:2])
    served = bento_process(env, settings.home_path, tmp_path / "bento-serve.log", tmp_path)
    try:
        served.wait_until_up()
        assert httpx.get(served.url + "/readyz", timeout=10).status_code == 200
        try:  # the worker runs the Bento's copy of the code, not the repository's
            import psutil

            workers = psutil.Process(served.process.pid).children(recursive=True)
            cwds = {Path(p.cwd()).resolve() for p in workers}
            assert cwds and cwds <= {(folder / "src").resolve()}, cwds
        except ImportError:
            pass
        response = httpx.post(
            served.url + "/predict",
            json={"customer_ids": [*ids, "no-such-customer"]},
            headers=headers(),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert [p["customer_id"] for p in body["predictions"]] == ids
        assert body["unknown_customer_ids"] == ["no-such-customer"]
        assert all(p["drivers"] for p in body["predictions"])
        expected = httpx.post(
            service.url + "/predict", json={"customer_ids": ids}, headers=headers(), timeout=30
        ).json()
        assert body["model"] == expected["model"]
        assert body["predictions"] == expected["predictions"]
        denied = httpx.post(served.url + "/predict", json={"customer_ids": ids}, timeout=30)
        assert denied.status_code == 401
    finally:
        assert served.stop() == 0, served.log_path.read_text()[-3000:]

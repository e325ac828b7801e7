"""Every run gets an output folder of its own, even when runs start in the same second."""

from concurrent.futures import ProcessPoolExecutor

from npsrisk.outputs import claim_dir, new_report_dir
from npsrisk.settings import load_settings


def test_runs_in_the_same_second_get_their_own_folders(tmp_path):
    settings = load_settings(home=tmp_path / "home")
    first = new_report_dir(settings, "train", "20261201T092549Z")
    second = new_report_dir(settings, "train", "20261201T092549Z")
    third = new_report_dir(settings, "train", "20261201T092549Z")
    assert [p.name for p in (first, second, third)] == [
        "20261201T092549Z",
        "20261201T092549Z-2",
        "20261201T092549Z-3",
    ]
    assert all(p.is_dir() and p.parent == settings.reports_path / "train" for p in (first, third))
    (first / "report.md").write_text("run 1")
    assert not (second / "report.md").exists()


def _claim(parent: str) -> str:
    from pathlib import Path

    return str(claim_dir(Path(parent), "20261201T092549Z"))


def test_concurrent_processes_never_share_a_folder(tmp_path):
    with ProcessPoolExecutor(max_workers=4) as pool:
        paths = list(pool.map(_claim, [str(tmp_path)] * 12))
    assert len(set(paths)) == 12

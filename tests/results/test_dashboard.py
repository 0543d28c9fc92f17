"""What optuna-dashboard shows of a study made by ``hpsearch run``: its REST API, and the page in
a real headless Chromium driven by selenium."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from hpsearch.results.dashboard import make_dashboard_server
from tests.cli.test_cli import HPSEARCH, _get_json, run_cli

SCREENSHOT_DIR = (
    Path(os.environ.get("HPSEARCH_SCREENSHOTS", ""))
    if os.environ.get("HPSEARCH_SCREENSHOTS")
    else None
)


@pytest.fixture
def served(tmp_path, study_file):
    """Run an MDMM study through the CLI in tmp_path, and serve the dashboard on it."""
    path = study_file(
        n_trials=6,
        extra='method = "mdmm"\nepsilon = { type = "float", low = 0.5, high = 20.0, log = true }',
    )
    out = run_cli("run", str(path), "--no-progress", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    server = make_dashboard_server(f"sqlite:///{tmp_path / 'hpsearch.db'}", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def _study(base: str) -> tuple[int, dict]:
    studies = _get_json(f"{base}/api/studies", None)
    summary = next(s for s in studies["study_summaries"] if s["study_name"] == "small")
    return summary["study_id"], _get_json(f"{base}/api/studies/{summary['study_id']}", None)


def test_the_api_serves_note_metric_names_figures_artifacts_and_constraints(served) -> None:
    base, tmp_path = served
    study_id, detail = _study(base)
    assert detail["objective_names"] == ["val_task_loss", "val_sq_weight_norm"]
    note = detail["note"]["body"]
    for fragment in ("# small", "**inner method**: `mdmm`", "`epsilon`: float in [0.5, 20.0]"):
        assert fragment in note, fragment
    assert "hypervolume" in note and "scalarization gap" in note
    ids = {g["id"] for g in detail["plotly_graph_objects"]}
    assert ids == {"objective-space", "hypervolume-history", "pareto-loss-curves"}
    (artifact,) = detail["artifacts"]
    assert artifact["filename"] == "small-front.png"
    png = urllib.request.urlopen(
        f"{base}/artifacts/{study_id}/{artifact['artifact_id']}", timeout=10
    ).read()
    assert png.startswith(b"\x89PNG")
    assert (tmp_path / "hpsearch.db-artifacts").is_dir()
    for trial in detail["trials"]:
        assert {"val_loss1", "val_loss2", "val_metric"} <= {a["key"] for a in trial["user_attrs"]}
        # Feasibility as the dashboard reads it (the list format), matching hpsearch's own.
        feasible = next(a["value"] for a in trial["user_attrs"] if a["key"] == "feasible")
        # A pareto study: ε is a knob there, so no Optuna constraint (feasible is recorded).
        assert trial["constraints"] == [] and feasible in ("True", "False")
    # The dashboard's best trials are the feasible Pareto front, as Optuna's are.
    study = optuna.load_study(study_name="small", storage=f"sqlite:///{tmp_path / 'hpsearch.db'}")
    expected = {t.number for t in study.best_trials}
    assert {t["number"] for t in detail["best_trials"]} == expected


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def test_the_dashboard_page_renders_in_headless_chromium(served, tmp_path) -> None:
    found = _chromium()
    if found is None:
        if os.environ.get("HPSEARCH_REQUIRE_BROWSER"):
            pytest.fail("HPSEARCH_REQUIRE_BROWSER is set but chromium/chromedriver are missing")
        pytest.skip("no chromium + chromedriver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, _ = served
    study_id, _ = _study(base)
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--window-size=1400,1100",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(found[1]), options=options)
    folder = SCREENSHOT_DIR or tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    shots = []
    try:
        wait = WebDriverWait(driver, 60)
        # The study page: its name in the bar, and the Pareto-front plot drawn by plotly.
        driver.get(f"{base}/dashboard/studies/{study_id}")
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "header"), "small"))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".js-plotly-plot .points")))
        assert "Pareto Front" in driver.find_element(By.TAG_NAME, "body").text
        shots.append(_screenshot(driver, folder / "dashboard-study.png"))
        # The note page: the Markdown rendered (a heading element, not "## Search space").
        driver.get(f"{base}/dashboard/studies/{study_id}/note")
        heading = (By.XPATH, "//h2[normalize-space()='Search space']")
        wait.until(ec.presence_of_element_located(heading))
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "inner method: mdmm" in body and "scalarization gap" in body
        assert "## Search space" not in body and "**inner method**" not in body
    finally:
        # Saved whatever happened: on a failure it shows what the browser had.
        shots.append(_screenshot(driver, folder / "dashboard-note.png"))
        driver.quit()
    for shot in shots:
        assert shot.stat().st_size > 10_000


def _screenshot(driver, path: Path) -> Path:
    assert driver.save_screenshot(str(path))
    return path


def test_the_dashboard_follows_a_running_study(tmp_path, study_file) -> None:
    path = study_file(n_trials=200, epochs=30, dataset="digits")
    run = subprocess.Popen(
        [HPSEARCH, "run", str(path), "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = None
    try:
        deadline = time.time() + 120
        while not (tmp_path / "hpsearch.db").exists() and time.time() < deadline:
            time.sleep(0.2)
        server = make_dashboard_server(f"sqlite:///{tmp_path / 'hpsearch.db'}", port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        seen = []
        while len(set(seen)) < 3 and time.time() < deadline:
            try:
                _, detail = _study(base)
            except (StopIteration, OSError):
                time.sleep(0.3)
                continue
            complete = sum(t["state"] == "Complete" for t in detail["trials"])
            if complete:  # the run published the note before its first trial
                assert "## Search space" in detail["note"]["body"]
            seen.append(complete)
            time.sleep(0.3)
        assert run.poll() is None  # still running
        assert len(set(seen)) >= 3 and seen == sorted(seen)  # more trials with every look
    finally:
        run.send_signal(signal.SIGINT)
        run.wait(timeout=60)
        if server is not None:
            server.shutdown()
            server.server_close()


def test_figures_interrupted_while_publishing_are_made_by_the_next_run(
    tmp_path, study_file, monkeypatch
) -> None:
    # Ctrl-C while the finished run uploads its PNG: nothing is left to run, yet the rerun
    # must still publish (before, it returned at once and the figure never came).
    from hpsearch.cli import main
    from hpsearch.results import publish

    path = study_file(n_trials=2, epochs=1)
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    args = ["run", str(path), "--storage", storage, "--no-progress"]
    artifacts = tmp_path / "p.db-artifacts"

    def interrupted(**kwargs: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(publish, "upload_artifact", interrupted)
        assert main(args) == 130
    study = optuna.load_study(study_name="small", storage=storage)
    assert len(study.trials) == 2 and "published_trials" not in study.user_attrs
    assert not artifacts.exists() or not any(artifacts.iterdir())
    assert main(args) == 0
    assert len(list(artifacts.iterdir())) == 1
    assert (
        optuna.load_study(study_name="small", storage=storage).user_attrs["published_trials"] == 2
    )
    assert main(args) == 0  # up to date: no second PNG
    assert len(list(artifacts.iterdir())) == 1

"""One end-to-end run in a real browser: `streamlit run app.py` driven by Debian's Chromium.

Uploads the labelled sample, opens the overview and a dialogue, then uploads
traces with markup in them and checks it shows as typed. Screenshots go to
test-artifacts/ (gitignored). Skipped only when /usr/bin/chromium is absent.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest

from app_files import QUICK, app_files
from fpi.data.traces import load_traces
from fpi.data.write import write_traces

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
]
WAIT_MS = 120_000
SCRIPT = "<script>alert(1)</script>"
BOLD = "**bold**"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium "
                                "(apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """The app on a free port; yields (url, labelled sample, server log) and always stops it."""
    tmp = tmp_path_factory.mktemp("browser")
    files = app_files(tmp)
    # A second model in the registry, for the Compare page's two-model view (trained on other traces).
    from fpi.model.estimator import FailurePointModel
    from fpi.model.registry import Registry
    from fpi.simulator.simulate import simulate

    Registry(tmp / "home", default_model=files.model).save_candidate(
        FailurePointModel(config=QUICK).fit(simulate(1500, seed=41)))
    port = _free_port()
    env = {**os.environ, "FPI_HOME": str(tmp / "home"), "FPI_MODEL": str(files.model), "FPI_COMPILED": "0"}
    log_path = tmp / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.read().strip() == b"ok":
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("streamlit did not start:\n" + log_path.read_text(errors="replace")[-3000:])
                time.sleep(0.3)
            yield url, files.labelled, log_path
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def seed_team_verdicts(home: Path, frame: pd.DataFrame) -> None:
    """Ana and Bo judged the first 120 labelled turns: Bo disagrees on every seventh, Ana is wrong on every tenth."""
    from fpi.data.summary import dataset_fingerprint
    from fpi.review.store import VerdictStore

    dataset = dataset_fingerprint(frame)
    other = {"correct": "asr", "asr": "nlu", "nlu": "er", "er": "result", "result": "correct", "false_wake": "asr"}
    rows = []
    labelled = frame[frame["failure_point"].notna()].head(120)
    for i, turn in enumerate(labelled.itertuples(index=False)):
        truth = str(turn.failure_point)
        ana = other[truth] if i % 10 == 0 else truth
        bo = other[truth] if i % 7 == 0 else truth
        for who, label in (("Ana Lima", ana), ("Bo Chen", bo)):
            rows.append({"dataset": dataset, "dialogue_id": str(turn.dialogue_id), "turn_index": int(turn.turn_index),
                         "label": label, "analyst": who})
    with VerdictStore(f"sqlite:///{(home / 'fpi.sqlite3').as_posix()}") as store:
        store.record_many(rows)


def settle(page, ms: int = 1500) -> None:
    """Wait until Streamlit has replaced every placeholder (charts and tables load after the page), then a bit
    for plotly to draw, so the screenshot shows the page as a person sees it."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stStatusWidgetRunningIcon")).to_have_count(0)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0)
    expect(page.get_by_test_id("stSkeletonElement")).to_have_count(0)
    page.wait_for_timeout(ms)


def test_upload_overview_dialogue_in_a_real_browser(server: tuple[str, Path, Path], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, sample, log_path = server
    frame = load_traces(sample)
    ARTIFACTS.mkdir(exist_ok=True)
    markup_file = tmp_path / "markup.csv"
    first_turns = frame.groupby("dialogue_id").head(1).index
    marked = frame.copy()
    marked.loc[first_turns, "asr_text"] = SCRIPT
    marked.loc[first_turns, "response_text"] = BOLD
    write_traces(marked, markup_file)
    recalibrated_file = tmp_path / "other_pipeline.csv"
    other = load_traces(sample.parent / "unlabelled.csv") if (sample.parent / "unlabelled.csv").exists() else frame
    for column, shift in (("asr_confidence", 2.5), ("nlu_confidence", -1.5)):
        p = other[column].astype(float).clip(1e-6, 1 - 1e-6)
        other[column] = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + shift)))
    write_traces(other.drop(columns=["failure_point"], errors="ignore"), recalibrated_file)
    broken_file = tmp_path / "broken.csv"
    broken = pd.read_csv(sample, dtype=str, keep_default_na=False).head(40).rename(
        columns={"asr_confidence": "ASR conf"})
    broken.loc[3, "wake_confidence"] = "1.7"
    broken.to_csv(broken_file, index=False)

    expect.set_options(timeout=WAIT_MS)
    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2600})
            page.set_default_timeout(WAIT_MS)
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

            # The first screen is the dashboard on the bundled sample, marked as such.
            page.goto(url)
            expect(page.get_by_text("Defect rate", exact=True)).to_be_visible()
            expect(page.get_by_text("labelled sample", exact=False).first).to_be_visible()
            expect(page.get_by_text("Deploy", exact=True)).to_have_count(0)  # toolbar in viewer mode
            settle(page, 1500)
            page.screenshot(path=str(ARTIFACTS / "browser-0-first-screen.png"))

            page.get_by_test_id("stSidebarNav").get_by_text("Data").click()
            expect(page.get_by_text("Upload traces", exact=False).first).to_be_visible()
            page.locator("input[type=file]").set_input_files(str(sample))
            expect(page.get_by_text("Scored by model:").first).to_be_visible()
            expect(page.get_by_text(f"{len(frame):,}", exact=True).first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "browser-1-data.png"))

            page.get_by_test_id("stSidebarNav").get_by_text("Overview").click()
            expect(page.get_by_text("Defect rate", exact=True)).to_be_visible()
            expect(page.get_by_text("Where turns fail in the pipeline", exact=True)).to_be_visible()
            expect(page.get_by_text("Matching turns", exact=True)).to_be_visible()
            settle(page, 1500)
            page.screenshot(path=str(ARTIFACTS / "browser-2-overview.png"))

            # Traces from a pipeline calibrated otherwise: the Overview warns and offers self-training, which
            # only a maintainer may run (this app has no maintainer token: refused, and logged).
            page.get_by_test_id("stSidebarNav").get_by_text("Data").click()
            page.locator("input[type=file]").set_input_files(str(recalibrated_file))
            expect(page.get_by_text("File: other_pipeline.csv", exact=True)).to_be_visible()
            page.get_by_test_id("stSidebarNav").get_by_text("Overview").click()
            expect(page.get_by_text("Your traces differ from the model's training data", exact=False)).to_be_visible()
            settle(page, 500)
            page.get_by_role("button", name="Self-train on these traces").click()
            expect(page.get_by_text("only a maintainer may train a model", exact=False).first).to_be_visible()
            page.mouse.move(0, 0)  # the button's tooltip would hide the triage link in the screenshot
            settle(page, 1500)
            page.screenshot(path=str(ARTIFACTS / "browser-2b-overview-shift.png"), full_page=True)
            page.get_by_test_id("stSidebarNav").get_by_text("Data").click()
            page.locator("input[type=file]").set_input_files(str(sample))
            expect(page.get_by_text(f"File: {sample.name}", exact=True)).to_be_visible()

            page.get_by_test_id("stSidebarNav").get_by_text("Dialogue drill-down").click()
            expect(page.get_by_text("Why the model says so", exact=True)).to_be_visible()
            page.wait_for_url(re.compile(r"dialogue=[^&]+"))
            dialogue = re.search(r"dialogue=([^&]+)", page.url).group(1)
            turns = frame[frame["dialogue_id"] == dialogue]
            assert len(turns), f"the URL names dialogue {dialogue!r}, which is not in the sample"
            text = turns["asr_text"].dropna()
            if len(text):
                expect(page.get_by_text(text.iloc[0], exact=True).first).to_be_visible()
            settle(page, 1500)
            page.screenshot(path=str(ARTIFACTS / "browser-3-dialogue.png"))

            # The address bar is a link a colleague can open: a new browser context is a new session.
            assert "dataset=" in page.url and "turn=" in page.url, page.url
            colleague = browser.new_context(viewport={"width": 1440, "height": 2600})
            other = colleague.new_page()
            other.set_default_timeout(WAIT_MS)
            other.goto(page.url)
            expect(other.get_by_text("Why the model says so", exact=True)).to_be_visible()
            if len(text):
                expect(other.get_by_text(text.iloc[0], exact=True).first).to_be_visible()
            assert re.search(r"dialogue=([^&]+)", other.url).group(1) == dialogue
            expect(other.get_by_text("What these features mean", exact=True)).to_be_visible()
            settle(other, 4000)
            other.screenshot(path=str(ARTIFACTS / "browser-3b-link-in-a-new-session.png"))
            colleague.close()

            page.get_by_test_id("stSidebarNav").get_by_text("Model", exact=True).click()
            expect(page.get_by_text("What drives each label", exact=True)).to_be_visible()
            expect(page.get_by_text("What the features mean", exact=False).first).to_be_visible()
            settle(page, 3000)
            page.screenshot(path=str(ARTIFACTS / "browser-5-model.png"), full_page=True)

            page.get_by_test_id("stSidebarNav").get_by_text("Cohorts", exact=True).click()
            expect(page.get_by_text("Cohorts that fail more often", exact=True)).to_be_visible()
            settle(page, 2500)
            page.screenshot(path=str(ARTIFACTS / "browser-6-cohorts.png"), full_page=True)

            page.get_by_test_id("stSidebarNav").get_by_text("Compare", exact=True).click()
            expect(page.get_by_text("Where turns moved", exact=True).first).to_be_visible()
            expect(page.get_by_text("Cohorts whose rate changed", exact=True)).to_be_visible()
            settle(page, 3000)
            page.screenshot(path=str(ARTIFACTS / "browser-6b-compare-models.png"), full_page=True)
            page.get_by_text("Before and after a date", exact=True).click()
            expect(page.get_by_text("migration matrix needs the same turns", exact=False)).to_be_visible()
            settle(page, 3000)
            page.screenshot(path=str(ARTIFACTS / "browser-6c-compare-date.png"), full_page=True)

            page.get_by_test_id("stSidebarNav").get_by_text("Triage", exact=True).click()
            page.get_by_label("Your name").fill("Ana Lima")
            page.get_by_role("button", name="Start triage").click()
            expect(page.get_by_text("Your verdict", exact=False).first).to_be_visible()
            settle(page, 1500)
            page.screenshot(path=str(ARTIFACTS / "browser-7-triage.png"), full_page=True)

            # The Team page on two analysts' verdicts (one in ten planted wrong, a few disagreements).
            seed_team_verdicts(log_path.parent / "home", frame)
            page.get_by_test_id("stSidebarNav").get_by_text("Team", exact=True).click()
            expect(page.get_by_text("Cohen's kappa", exact=True)).to_be_visible()
            expect(page.get_by_text("Disagreements to adjudicate", exact=True)).to_be_visible()
            page.get_by_role("button", name="Audit the verdicts on the loaded traces").click()
            expect(page.get_by_text("Audit:", exact=False).first).to_be_visible()
            settle(page, 2500)
            page.screenshot(path=str(ARTIFACTS / "browser-9-team.png"), full_page=True)

            page.get_by_test_id("stSidebarNav").get_by_text("Model", exact=True).click()
            page.get_by_text("Who may change the model", exact=False).first.click()
            expect(page.get_by_text("Model changes are off in this app", exact=False).first).to_be_visible()
            settle(page, 500)
            page.get_by_text("Model versions", exact=True).click()
            activate = page.get_by_role("button", name="Activate", exact=True)
            expect(activate).to_be_visible()
            settle(page, 500)  # a click that lands while the page re-runs is lost
            activate.click()  # an analyst: refused, and logged
            expect(page.get_by_text("only a maintainer may activate a model", exact=False).first).to_be_visible()
            settle(page, 1500)
            page.screenshot(path=str(ARTIFACTS / "browser-10-model-roles.png"), full_page=True)

            # A rejected file: every problem with the value found, in full.
            page.get_by_test_id("stSidebarNav").get_by_text("Data").click()
            page.locator("input[type=file]").set_input_files(str(broken_file))
            expect(page.get_by_text("Value found", exact=True)).to_be_visible()
            expect(page.get_by_text("'1.7'", exact=False).first).to_be_visible()
            settle(page, 1000)
            page.screenshot(path=str(ARTIFACTS / "browser-8-rejected.png"), full_page=True)

            # Markup in the traces is shown as typed, never run or rendered.
            page.get_by_test_id("stSidebarNav").get_by_text("Data").click()
            page.locator("input[type=file]").set_input_files(str(markup_file))
            expect(page.get_by_text("Scored by model:").first).to_be_visible()
            expect(page.get_by_text("File: markup.csv", exact=True)).to_be_visible()
            page.get_by_test_id("stSidebarNav").get_by_text("Dialogue drill-down").click()
            expect(page.get_by_text(SCRIPT, exact=True).first).to_be_visible()
            expect(page.get_by_text(BOLD, exact=True).first).to_be_visible()
            assert page.locator("script", has_text="alert(1)").count() == 0
            assert page.locator("strong", has_text="bold").count() == 0
            page.screenshot(path=str(ARTIFACTS / "browser-4-markup.png"))
        finally:
            browser.close()
    assert dialogs == [], f"the page opened dialogs: {dialogs}"

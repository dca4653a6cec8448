"""A real browser (Debian chromium via Playwright) uses every tab of the running app."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from app_server import running_app

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser") \
    or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def page(bundle_dir, tmp_path_factory):
    assert Path(CHROMIUM).exists(), "Debian chromium is required (.ci/run installs it with apt)"
    log = tmp_path_factory.mktemp("browser-app") / "app.log"
    with running_app(bundle_dir, log) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url)
        yield page
        browser.close()


def test_upload_shows_label_with_percentage(page, dataset, tmp_path):
    fake = sorted((dataset / "Test" / "Fake").glob("*.jpg"))[0]
    page.get_by_role("tab", name="Detect").click()
    page.locator("input[type=file]").first.set_input_files(str(fake))
    page.get_by_role("button", name="Detect", exact=True).click()
    verdict = page.get_by_text(re.compile(r"(Fake|Real) — \d+% confident|Uncertain — the model cannot tell"))
    expect(verdict).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile(r"\d+%")).first).to_be_visible()
    page.screenshot(path=str(tmp_path / "detect.png"), full_page=True)
    assert (tmp_path / "detect.png").stat().st_size > 10_000


def test_example_click_then_detect(page):
    """An example is scored on click, and "Detect" on it then goes through /predict, whose path
    check must accept the server's cached copy of the example."""
    page.reload()
    page.get_by_role("tab", name="Detect").click()
    page.get_by_text(re.compile(r"^(Real photo|Manipulated) \(")).first.click()
    verdict = page.get_by_text(re.compile(r"(Fake|Real) — \d+% confident|Uncertain — the model cannot tell"))
    expect(verdict).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Detect", exact=True).click()
    expect(verdict).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1000)
    assert "path on the server" not in page.content()
    expect(verdict).to_be_visible()


def test_bad_upload_shows_friendly_error(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image at all\n" * 20)
    page.get_by_role("tab", name="Detect").click()
    page.locator("input[type=file]").first.set_input_files(str(bad))
    page.get_by_role("button", name="Detect", exact=True).click()
    expect(page.get_by_text(re.compile("not an image|could not be read")).first).to_be_visible(timeout=30_000)
    assert "Traceback" not in page.content()
    # The previous request's verdict was cleared, not left under the error.
    expect(page.get_by_text(re.compile(r"— \d+% confident|the model cannot tell"))).to_have_count(0)


def test_group_picture_boxes_and_face_table(page, tmp_path):
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        portrait = Image.open(f).convert("RGB")
    group = Image.new("RGB", (1280, 720), (200, 200, 190))
    for x, y, scale in ((40, 60, 0.9), (500, 110, 0.75), (880, 160, 0.6)):
        group.paste(portrait.resize((round(512 * scale), round(600 * scale))), (x, y))
    path = tmp_path / "group.jpg"
    group.save(path, quality=92)
    page.get_by_role("tab", name="Detect").click()
    page.locator("input[type=file]").first.set_input_files(str(path))
    page.get_by_role("button", name="Detect", exact=True).click()
    expect(page.get_by_text(re.compile(r"the most suspicious of 3"))).to_be_visible(timeout=30_000)
    body = page.inner_text("body")
    for index in (1, 2, 3):  # one table row per face: index, verdict, P(fake), confidence, box
        assert re.search(rf"(?m)^\s*{index}\s+(fake|real|uncertain)\s+[01](\.\d+)?\s+[01](\.\d+)?\s+\d+, \d+",
                         body), body[body.find("box (x"):][:800]
    expect(page.locator("img[src*='faces.jpg']").first).to_be_visible()


def test_batch_tab(page, dataset, tmp_path):
    files = [str(f) for f in sorted((dataset / "Test").rglob("*.jpg"))[:3]]
    page.get_by_role("tab", name="Batch").click()
    page.locator("input[type=file][multiple]").first.set_input_files(files)
    page.get_by_role("button", name="Score all").click()
    expect(page.get_by_role("cell", name="predictions.csv")).to_be_visible(timeout=90_000)
    body = page.inner_text("body")
    for f in files:
        assert re.search(re.escape(f.rsplit("/", 1)[-1]) + r"\s+(fake|real)\s+(fake|real|uncertain)\s+0\.\d+",
                         body), body[-1500:]
    page.screenshot(path=str(tmp_path / "batch.png"), full_page=True)


def test_evaluation_tab(page, tmp_path):
    page.get_by_role("tab", name="Evaluation").click()
    expect(page.get_by_text("Model served:")).to_be_visible(timeout=10_000)
    expect(page.get_by_text("roc_auc").first).to_be_visible()
    expect(page.locator("img[src*='confusion_matrix']")).to_be_visible(timeout=10_000)
    expect(page.locator("img[src*='roc_curve']")).to_be_visible()
    page.screenshot(path=str(tmp_path / "evaluation.png"), full_page=True)

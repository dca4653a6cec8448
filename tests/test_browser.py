"""A real browser (Debian chromium via Playwright) uses every tab of the running app, and checks
what a newcomer sees first: one answer told once, examples beside the upload, no leftovers of a
failed request, a Video tab, and no path of the machine that trained the model."""

from __future__ import annotations

import json
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
# "Fake — 93% confident (...)", "Fake (face 2 of 3) — 93% confident", "Uncertain — the model cannot tell ..."
ANSWER = re.compile(r"^(Fake|Real)\b[^—\n]*— \d+% confident|^Uncertain\b")


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


def _fresh(page):
    page.reload()
    page.get_by_role("tab", name="Detect").click()


def _detect(page, path):
    page.locator("#photo input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="Detect", exact=True).click()
    expect(page.locator("#verdict").get_by_text(ANSWER)).to_be_visible(timeout=30_000)


def _face_rows(page) -> list[list[str]]:
    """The face table's rows: face, verdict, P(fake), confidence, box."""
    text = page.locator("#face-table").inner_text()
    cells = [c.strip() for c in text.split("box (x, y, w, h)", 1)[1].splitlines() if c.strip()]
    return [cells[i:i + 5] for i in range(0, len(cells), 5)]


def test_one_answer_told_once(page, dataset, tmp_path):
    """Headline, probability bars, face table and JSON agree; the verdict, boxed faces and table come
    first, the JSON waits in a closed accordion and the explanation panel is not shown."""
    _fresh(page)
    _detect(page, sorted((dataset / "Test" / "Fake").glob("*.jpg"))[0])
    headline = page.locator("#verdict").inner_text()
    row = _face_rows(page)[0]
    verdict, p_fake = row[1], float(row[2])
    assert verdict in ("fake", "real", "uncertain")
    assert headline.lower().startswith(verdict), (headline, row)
    assert abs(float(re.search(r"P\(fake\) =? ?([01]\.\d+)", headline).group(1)) - p_fake) <= 0.006, headline
    bars = page.locator("#probabilities").inner_text()
    percent = {k: int(v) for k, v in re.findall(r"(fake|real)\s+(\d+)%", bars)}
    assert abs(percent["fake"] - 100 * p_fake) <= 0.6 and percent["fake"] + percent["real"] in (99, 100, 101), bars
    expect(page.locator("#faces img")).to_be_visible()
    expect(page.locator("#provenance").get_by_text("Provenance")).to_be_visible()
    expect(page.locator("#explanation")).not_to_be_visible()  # Explain is off: no empty panel
    json_view = page.locator("#result-json")
    expect(json_view.get_by_text('"p_fake"').first).not_to_be_visible()  # closed until asked for
    json_view.get_by_text("Result as JSON").click()
    expect(json_view.get_by_text('"p_fake"').first).to_be_visible()
    result = re.sub(r"\s+", "", json_view.inner_text())  # the viewer puts each token on a line of its own
    assert f'"verdict":"{verdict}"' in result, result[:600]
    assert abs(float(re.search(r'"p_fake":([0-9.e-]+)', result).group(1)) - p_fake) <= 0.0006, result[:600]
    assert page.locator("#verdict").bounding_box()["y"] < json_view.bounding_box()["y"]
    page.screenshot(path=str(tmp_path / "detect.png"), full_page=True)


def test_examples_are_labelled_thumbnails_beside_the_upload(page, bundle_dir):
    """Each example is a thumbnail captioned real or manipulated, next to the photo field; a click
    scores it without ticking Explain, and Detect on it then goes through the upload check."""
    from deepfake_detector.bundle import examples

    _fresh(page)
    kinds = [kind for _, kind in examples(bundle_dir)]
    thumbs = page.locator("#examples button.thumbnail-item")
    expect(thumbs).to_have_count(len(kinds))
    captions = page.locator("#examples .caption-label").all_inner_texts()
    assert sorted(captions) == sorted("Real photo" if k == "real" else "Manipulated" for k in kinds)
    photo, gallery = page.locator("#photo").bounding_box(), page.locator("#examples").bounding_box()
    assert gallery["x"] >= photo["x"] + photo["width"] - 5 and gallery["y"] < photo["y"] + photo["height"] / 2
    explain = page.get_by_role("checkbox", name=re.compile("^Explain the deciding face"))
    expect(explain).not_to_be_checked()
    thumbs.last.click()
    expect(page.locator("#verdict").get_by_text(ANSWER)).to_be_visible(timeout=30_000)
    expect(page.locator("#photo img").first).to_be_visible()  # the example is in the photo field
    expect(explain).not_to_be_checked()  # later uploads do not pay for an explanation they did not ask for
    page.get_by_role("button", name="Detect", exact=True).click()
    expect(page.locator("#verdict").get_by_text(ANSWER)).to_be_visible(timeout=30_000)
    assert "path on the server" not in page.content()


def test_explanation_panel_only_while_explain_is_ticked(page, dataset):
    _fresh(page)
    explain = page.get_by_role("checkbox", name=re.compile("^Explain the deciding face"))
    expect(page.locator("#explanation")).not_to_be_visible()
    explain.check()
    expect(page.locator("#explanation")).to_be_visible()
    _detect(page, sorted((dataset / "Test" / "Real").glob("*.jpg"))[0])
    expect(page.locator("#explanation img")).to_be_visible(timeout=30_000)
    explain.uncheck()
    expect(page.locator("#explanation")).not_to_be_visible()


def test_failed_upload_leaves_a_message_not_error_badges(page, dataset, tmp_path):
    _fresh(page)
    _detect(page, sorted((dataset / "Test" / "Real").glob("*.jpg"))[0])
    bad = tmp_path / "notes.png"
    bad.write_text("not an image at all\n" * 20)
    page.locator("#photo input[type=file]").set_input_files(str(bad))
    page.get_by_role("button", name="Detect", exact=True).click()
    message = page.locator("#verdict")
    expect(message.get_by_text("Not scored")).to_be_visible(timeout=30_000)
    expect(message.get_by_text(re.compile("not an image|could not be read"))).to_be_visible()
    page.wait_for_timeout(6000)  # past any pop-up's life: what stays on screen
    assert "Traceback" not in page.content()
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)  # no badge left on the outputs
    expect(page.locator("#photo img")).to_have_count(0)  # no broken picture: the field is empty again
    expect(page.get_by_text(ANSWER)).to_have_count(0)  # the previous verdict was cleared


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
    _fresh(page)
    _detect(page, path)
    rows = _face_rows(page)
    assert len(rows) == 3, rows
    for index, row in enumerate(rows, start=1):  # index, verdict, P(fake), confidence, box
        assert re.fullmatch(rf"{index} (fake|real|uncertain) [01](\.\d+)? [01](\.\d+)? \d+, \d+, \d+, \d+",
                            " ".join(row)), row
    expect(page.locator("img[src*='faces.jpg']").first).to_be_visible()


def test_video_tab_still_for_an_mp4v_clip_and_a_readable_timeline(page, tmp_path):
    import cv2
    import matplotlib.cbook
    import numpy as np
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        frame = np.asarray(Image.open(f).convert("RGB").resize((256, 300)))[:, :, ::-1]
    clip = tmp_path / "clip.mp4"  # MPEG-4 Part 2, which browsers do not play: a grey player
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (256, 300))
    for i in range(20):
        writer.write(np.ascontiguousarray(np.roll(frame, i, axis=1)))
    writer.release()
    page.reload()
    page.get_by_role("tab", name="Video").click()
    page.get_by_role("tabpanel").locator("input[type=file]").set_input_files(str(clip))
    still = page.locator("#video-still")
    expect(still.locator("img")).to_be_visible(timeout=30_000)
    expect(still.get_by_text(re.compile("cannot play MPEG-4 Part 2"))).to_be_visible()
    page.get_by_role("button", name="Detect in video").click()
    expect(page.get_by_text(ANSWER)).to_be_visible(timeout=60_000)
    timeline = page.locator("#timeline")
    expect(timeline.locator("img")).to_be_visible()
    picture = timeline.locator("img").bounding_box()
    for label in timeline.locator("[data-testid='block-label']").all():  # nothing over the legend on its top edge
        box = label.bounding_box()
        assert not label.is_visible() or box["y"] + box["height"] <= picture["y"] or box["x"] >= picture["x"] + \
            picture["width"], (box, picture)


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


def test_evaluation_tab_names_no_local_path(page, bundle_dir, tmp_path):
    data_path = json.loads((bundle_dir / "config.json").read_text())["dataset"]["path"]
    page.get_by_role("tab", name="Evaluation").click()
    expect(page.get_by_text("Model served:")).to_be_visible(timeout=10_000)
    expect(page.get_by_text("roc_auc").first).to_be_visible()
    expect(page.locator("img[src*='confusion_matrix']")).to_be_visible(timeout=10_000)
    expect(page.locator("img[src*='roc_curve']")).to_be_visible()
    expect(page.locator("code", has_text=re.compile(rf"^{Path(data_path).name}$")).first).to_be_visible()
    page.wait_for_timeout(1000)  # the model info JSON loads with the page
    assert data_path not in page.content()  # neither in the text nor in the model info JSON
    page.screenshot(path=str(tmp_path / "evaluation.png"), full_page=True)

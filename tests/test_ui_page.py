"""What the Detect and Video tabs show, tested without a browser (tests/test_browser.py drives the page)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pytest

from deepfake_detector import ui
from deepfake_detector.inference import Predictor

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "models" / "default"


@pytest.fixture(scope="module")
def shipped() -> Predictor:
    return Predictor(DEFAULT)


def test_model_info_names_the_dataset_folder_not_a_path(shipped):
    assert "/" in shipped.config["dataset"]["path"]  # the bundle records where it was trained
    info = ui.public_info(shipped)
    assert info["dataset"]["folder"] == Path(shipped.config["dataset"]["path"]).name
    assert info["dataset"]["counts"] == shipped.config["dataset"]["counts"]
    page = ui.evaluation_markdown(shipped)
    assert shipped.config["dataset"]["path"] not in page and f"`{info['dataset']['folder']}`" in page


def test_examples_are_captioned_with_what_they_are_real_first():
    examples = [(Path("fake_02.jpg"), "fake"), (Path("real_00.jpg"), "real"), (Path("real_01.jpg"), "real")]
    assert ui.example_gallery(examples) == [("real_00.jpg", "Real photo"), ("real_01.jpg", "Real photo"),
                                            ("fake_02.jpg", "Manipulated")]


def _answer(handler, *args):
    return asyncio.run(ui.on_page(handler)(*args))


def test_page_answer_adds_the_provenance_panel_and_leaves_the_photo():
    async def answered(image, crop_face, explain):
        return {"verdict": "real", "provenance": None}, {"real": 0.9, "fake": 0.1}, "### Real", None, [], None

    out = _answer(answered, "x.jpg", True, False)
    assert out[:6] == ({"verdict": "real", "provenance": None}, {"real": 0.9, "fake": 0.1}, "### Real", None, [], None)
    assert out[6].startswith("#### Provenance") and isinstance(out[7], type(gr.skip()))


def test_page_failure_is_said_in_the_verdict_panel_not_raised():
    async def refused(image, crop_face, explain):
        raise ui.RejectedInput("this is a text file, not an image")

    async def busy(image, crop_face, explain):
        raise gr.Error("The detector is busy: try again in a few seconds.", title="Busy")

    out = _answer(refused, "notes.png", True, False)
    assert "Not scored" in out[2] and "not an image" in out[2]
    assert out[7] is None  # the refused file leaves the photo field (it showed as a broken picture)
    assert all(v in (None, "") for i, v in enumerate(out) if i != 2)
    out = _answer(busy, "face.jpg", True, False)
    assert "busy" in out[2] and isinstance(out[7], type(gr.skip()))  # kept, to try again


def test_user_errors_mark_refused_input(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image\n" * 20)
    with pytest.raises(ui.RejectedInput, match="not an image"):
        ui._user_errors(lambda: ui.detect(Predictor(DEFAULT), str(bad)))()


def _clip(path: Path, fourcc: str) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (64, 48))
    assert writer.isOpened()
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


def test_a_clip_the_browser_cannot_play_gets_a_still(tmp_path):
    still, note = ui.video_still(str(_clip(tmp_path / "clip.mp4", "mp4v")), 40_000_000)
    assert still.shape == (48, 64, 3) and "cannot play MPEG-4 Part 2 video" in note
    still, note = ui.video_still(str(_clip(tmp_path / "clip.avi", "MJPG")), 40_000_000)
    assert still is not None and "Motion JPEG" in note
    assert ui.video_still(str(_clip(tmp_path / "clip.webm", "VP80")), 40_000_000) == (None, "")  # it plays
    assert ui.video_still(str(_clip(tmp_path / "big.mp4", "mp4v")), 1000) == (None, "")  # over the limit: not decoded
    assert ui.video_still(None, 40_000_000) == (None, "")

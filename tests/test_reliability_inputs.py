"""Every hostile upload in the corpus gets a specific message through the code the UI/API/CLI use."""

from __future__ import annotations

import json
import subprocess
import sys

import gradio as gr
import numpy as np
import pytest

import corpus
from conftest import ROOT
from deepfake_detector import ui
from deepfake_detector.imaging import load_image

CORPUS = corpus.build()


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for name, (data, _, _) in CORPUS.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_predictor_handles_upload(predictor, corpus_dir, name):
    _, error, note = CORPUS[name]
    pred = predictor.predict(str(corpus_dir / name))
    if error:
        assert pred.error is not None and error in pred.error, pred.error
        assert pred.label is None
    else:
        assert pred.error is None, pred.error
        assert pred.label in ("real", "fake") and 0.0 <= pred.p_fake <= 1.0
        if note:
            assert any(note in n for n in pred.notes), pred.notes


@pytest.mark.parametrize("name", sorted(n for n, v in CORPUS.items() if v[1]))
def test_ui_turns_bad_upload_into_friendly_error(predictor, corpus_dir, name):
    detect = ui._user_errors(lambda path: ui.detect(predictor, path))
    with pytest.raises(gr.Error) as info:
        detect(str(corpus_dir / name))
    assert CORPUS[name][1] in info.value.message
    assert "Traceback" not in info.value.message


def test_exif_orientation_is_applied(corpus_dir):
    assert load_image(corpus_dir / "exif_rotated.jpg").rgb.shape[:2] == (120, 60)


def test_sixteen_bit_keeps_its_range(corpus_dir):
    rgb = load_image(corpus_dir / "sixteen_bit.png").rgb
    assert rgb.dtype == np.uint8 and rgb.max() > 200 and rgb.min() < 10


def test_cli_reports_bad_files_and_keeps_going(bundle_dir, corpus_dir):
    result = subprocess.run([sys.executable, "-m", "deepfake_detector.predict", str(corpus_dir), "--model",
                             str(bundle_dir), "--quiet"], capture_output=True, text=True, timeout=300,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    by_name = {r["file"].rsplit("/", 1)[-1]: r for r in rows}
    walked = {n for n in CORPUS if n.rsplit(".", 1)[-1] in ("jpg", "png", "gif")}
    assert set(by_name) == walked
    for name, row in by_name.items():
        assert set(row) >= {"file", "label", "p_fake", "confidence", "face_found", "error"}
        if CORPUS[name][1]:
            assert CORPUS[name][1] in row["error"]
            assert f"{name}: " in result.stderr
        else:
            assert row["error"] is None and row["label"] in ("real", "fake")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


def test_cli_exits_2_when_no_file_could_be_read(bundle_dir, tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    result = subprocess.run([sys.executable, "-m", "deepfake_detector.predict", str(tmp_path), "--model",
                             str(bundle_dir), "--quiet"], capture_output=True, text=True, timeout=300,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "none of the 2 file(s) could be read" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stdout.splitlines()) == 2  # each file still gets its JSON line with the reason

"""Predictor behaviour on images the tests make: face / no-face paths, calibration, explanation."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import matplotlib.cbook
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from deepfake_detector.faces import frame_faces


def portrait() -> Image.Image:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return Image.open(f).convert("RGB")


def photo_with_face() -> np.ndarray:
    """A 1024x768 'photo' with a face in the lower right: cropping must find and frame it."""
    canvas = Image.new("RGB", (1024, 768), (90, 120, 90))
    canvas.paste(portrait().resize((300, 350)), (600, 350))
    return np.asarray(canvas)


def test_face_is_found_and_cropped():
    rgb = photo_with_face()
    framing = frame_faces(rgb)
    assert framing.kind == "faces" and len(framing.regions) == 1
    region = framing.regions[0]
    x, y, w, h = region.box
    assert w == h and 150 <= w <= 360
    assert 600 <= x + w / 2 <= 900 and 350 <= y + h / 2 <= 700  # centred on the pasted portrait
    assert region.rgb.shape == (h, w, 3)


def test_no_face_scores_the_whole_image(predictor):
    noise = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    pred = predictor.predict(noise)
    assert pred.error is None and pred.face_found is False
    assert "no face found: scored the whole image" in pred.notes
    assert pred.faces[0].face_box is None and pred.faces[0].roll_degrees is None and pred.faces[0].landmarks is None


def test_crop_can_be_turned_off(predictor):
    pred = predictor.predict(photo_with_face(), crop=False)
    assert pred.face_found is False and pred.framing == "whole" and not any("no face" in n for n in pred.notes)
    assert [f.box for f in pred.faces] == [[0, 0, 1024, 768]]
    cropped = predictor.predict(photo_with_face())
    assert cropped.face_found is True


def test_prediction_fields_and_consistency(predictor):
    pred = predictor.predict(photo_with_face(), name="photo.jpg")
    d = pred.to_dict()
    assert d["file"] == "photo.jpg" and d["error"] is None
    assert d["label"] == ("fake" if d["p_fake"] >= d["threshold"] else "real")
    assert d["verdict"] in ("fake", "real", "uncertain") and len(d["faces"]) == 1
    assert d["faces"][0]["p_fake"] == d["p_fake"] and d["faces"][0]["index"] == 1
    assert d["confidence"] == pytest.approx(d["p_fake"] if d["label"] == "fake" else 1 - d["p_fake"])
    face = d["faces"][0]
    x, y, w, h = face["face_box"]
    (lx, ly), (rx, ry) = face["landmarks"]["eyes"]
    nose, mouth = face["landmarks"]["nose_tip"], face["landmarks"]["mouth"]
    assert x < lx < nose[0] < rx < x + w and y < max(ly, ry) < nose[1] < mouth[1] < y + h  # an upright face
    assert face["roll_degrees"] == pytest.approx(np.degrees(np.arctan2(ry - ly, rx - lx)), abs=0.1)
    json.dumps(d)  # serialisable as is


def test_bytes_path_and_array_inputs_agree(predictor, tmp_path):
    buf = io.BytesIO()
    Image.fromarray(photo_with_face()).save(buf, "PNG")
    path = tmp_path / "photo.png"
    path.write_bytes(buf.getvalue())
    a = predictor.predict(str(path)).p_fake
    b = predictor.predict(buf.getvalue()).p_fake
    c = predictor.predict(photo_with_face()).p_fake
    assert a == pytest.approx(b) == pytest.approx(c)


def test_batch_equals_single(predictor, dataset):
    files = sorted((dataset / "Test").rglob("*.jpg"))[:20]
    batch = list(predictor.predict_many(files, batch_size=8))
    for f, p in zip(files, batch):
        assert p.p_fake == pytest.approx(predictor.predict(f).p_fake, abs=1e-6)


def test_a_batch_of_large_pictures_does_not_hold_them_all(predictor, tmp_path):
    """predict_many keeps only each picture's model inputs once its faces are framed: eight 12 MP
    pictures (36 MB each decoded; two are decoded at a time, each with its working copies) never all at once."""
    import tracemalloc

    from PIL import Image

    paths = []
    for i in range(8):
        paths.append(tmp_path / f"big{i}.png")
        Image.new("RGB", (4000, 3000), (40 + 20 * i, 90, 120)).save(paths[-1], compress_level=1)
    tracemalloc.start()
    try:
        results = list(predictor.predict_many([str(p) for p in paths]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert all(r.error is None for r in results) and len(results) == 8
    assert peak < 6 * 36e6, f"{peak / 1e6:.0f} MB"  # 361 MB when every decoded picture was kept


def test_explanation_heatmap(predictor, dataset):
    fake = sorted((dataset / "Test" / "Fake").glob("*.jpg"))[0]
    pred = predictor.predict(fake, explain=True)
    heat = pred.heatmap
    assert heat.shape == (8, 8) and heat.min() >= 0 and heat.max() == pytest.approx(1.0)


def test_calibration_is_monotonic(predictor):
    raw = np.linspace(0.01, 0.99, 50)
    cal = predictor.calibrate(raw)
    assert predictor.cal_a > 0
    assert np.all(np.diff(cal) >= 0) and cal[0] < 0.5 < cal[-1]


def test_cli_prints_json_per_image(bundle_dir, dataset):
    result = subprocess.run([sys.executable, "-m", "deepfake_detector.predict", str(dataset / "Test" / "Fake"),
                             "--model", str(bundle_dir)], capture_output=True, text=True, timeout=300,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 40
    assert sum(r["label"] == "fake" for r in rows) >= 30
    assert "img" in result.stderr  # the progress bar


def test_cli_without_model_exits_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "deepfake_detector.predict", str(tmp_path), "--model",
                             str(tmp_path / "nope")], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "model bundle not found" in result.stderr and "Traceback" not in result.stderr


def test_large_batches_split_over_interpreters_give_the_same_scores(predictor, dataset):
    files = sorted((dataset / "Test").rglob("*.jpg"))[:40]
    batch = np.concatenate([predictor.prepare(f).inputs for f in files])
    together = predictor.raw_scores(batch)  # 40 >= 2 x SPLIT_FROM: split when both interpreters are free
    one_by_one = np.concatenate([predictor.raw_scores(x[None]) for x in batch])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    # An interpreter never runs more than MAX_ROWS at once (it would keep that batch's memory).
    runner = predictor._run
    runner(batch)
    held = runner._take_all_if_free()
    for slot in held:
        runner._pool.put(slot)
    assert held and all(shape[0] <= runner.MAX_ROWS for _, shape in held)


def test_a_call_alone_runs_multithreaded_and_gives_the_same_score(bundle_dir, dataset):
    from deepfake_detector.inference import TFLiteRunner

    size = json.loads((bundle_dir / "config.json").read_text())["image_size"]
    x = np.stack([np.asarray(Image.open(f).convert("RGB").resize((size, size)), np.float32)
                  for f in sorted((dataset / "Test").rglob("*.jpg"))[:2]])
    plain = TFLiteRunner(bundle_dir / "model.tflite", solo_threads=1)
    solo = TFLiteRunner(bundle_dir / "model.tflite", solo_threads=2)
    assert plain._solo is None and solo._solo is not None
    expected = plain(x[:1])
    np.testing.assert_allclose(solo(x[:1]), expected, atol=1e-5)
    assert solo._solo[1] == (1, size, size, 3)  # the call went to the multi-threaded interpreter
    # While another call holds an interpreter, a call takes a single-threaded one instead.
    busy = solo._pool.get()
    solo._solo[1] = None
    np.testing.assert_allclose(solo(x[1:2]), plain(x[1:2]), atol=1e-5)
    assert solo._solo[1] is None
    solo._pool.put(busy)
    # Everything is given back: the pool is whole again.
    assert len(solo._take_all_if_free()) == 2


def test_warm_up_runs_the_whole_path_once_and_not_the_explanation(bundle_dir, monkeypatch):
    from deepfake_detector import faces
    from deepfake_detector.inference import Predictor

    monkeypatch.setattr(faces, "_models", {})  # as in a fresh process: no face model loaded yet
    predictor = Predictor(bundle_dir)
    model_calls = []
    run = predictor._run
    predictor._run = lambda batch: (model_calls.append(batch.shape), run(batch))[1]
    assert predictor.warm_up() > 0
    size = predictor.image_size
    assert model_calls == [(1, size, size, 3)]  # one picture scored; no 64-copy explanation batch
    assert faces._models  # the face detector is loaded

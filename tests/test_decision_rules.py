"""The decision rules: a threshold for false alarms, group pictures, unfamiliar faces, and notes
on what a picture looks like. Synthetic scores and features; real face pictures where faces matter."""

from __future__ import annotations

import io
import json
import shutil

import matplotlib.cbook
import numpy as np
import pytest
import skimage.data
from PIL import Image

from deepfake_detector.faces import detect_faces, frame_faces
from deepfake_detector.imaging import load_image
from deepfake_detector.ood import Unfamiliarity, input_notes
from deepfake_detector.verdicts import DecisionRules, fit_group_thresholds, fit_threshold, picture_verdict


# -- the threshold and the band ----------------------------------------------------------------------
def test_threshold_calls_at_most_the_allowed_share_of_real_pictures_fake():
    rng = np.random.default_rng(0)
    real, fakes = rng.beta(2, 8, 1000), rng.beta(8, 2, 500)
    p = np.concatenate([real, fakes])
    labels = np.r_[np.zeros(1000), np.ones(500)].astype(int)
    t = fit_threshold(p, labels, max_false_alarm=0.02)
    assert (real >= t).sum() == 20  # exactly the allowed share, and not one more
    assert fit_threshold(p, labels, max_false_alarm=0.0) > real.max()
    assert (fakes >= t).mean() > 0.8


def test_label_and_confidence_never_contradict_the_verdict():
    rules = DecisionRules(threshold=0.9, band=(0.3, 0.95))
    for p in np.linspace(0, 1, 201):
        call = rules.call(float(p))
        assert call.confidence >= 0.5
        assert call.label == ("fake" if p >= 0.5 else "real")
        assert call.verdict in (call.label, "uncertain")
    assert rules.call(0.97).verdict == "fake"
    assert rules.call(0.92).verdict == "uncertain"  # over the threshold, inside the band
    assert rules.call(0.6).verdict == "uncertain"  # more likely fake, yet under the threshold
    assert rules.call(0.1).verdict == "real"
    # A threshold under one half never makes a "fake" that its own probability calls less likely.
    low = DecisionRules(threshold=0.39, band=(0.39, 0.39))
    assert low.call(0.45).verdict == "uncertain" and low.call(0.45).label == "real"


def test_an_unfamiliar_face_is_uncertain_whatever_its_score():
    rules = DecisionRules(threshold=0.6, band=(0.5, 0.7))
    assert rules.call(0.99, unfamiliar=True).verdict == "uncertain"
    assert rules.call(0.01, unfamiliar=True).verdict == "uncertain"


# -- group pictures ------------------------------------------------------------------------------------
def test_groups_of_real_faces_are_called_fake_as_rarely_as_one_face():
    rng = np.random.default_rng(1)
    real_val = rng.beta(2, 6, 5000)
    t1 = float(np.quantile(real_val, 0.98))
    thresholds = fit_group_thresholds(real_val, t1)
    assert thresholds[0] == t1 and all(b >= a for a, b in zip(thresholds, thresholds[1:]))
    rules = DecisionRules(t1, (t1, t1), tuple(thresholds))
    real_test = rng.beta(2, 6, (6000, 5))  # fresh real faces, pictures of 1..5

    def false_alarms(rules, n):
        return np.mean([picture_verdict([rules.call(float(p), n).verdict for p in row]) == "fake"
                        for row in real_test[:, :n]])

    one = false_alarms(rules, 1)
    assert one == pytest.approx(0.02, abs=0.008)
    for n in range(2, 6):
        assert false_alarms(rules, n) <= one + 0.008, n
    # Without the group rule the false alarms compound with the number of faces.
    assert false_alarms(DecisionRules(t1, (t1, t1)), 5) > 4 * one


def test_picture_verdict_and_which_face():
    assert picture_verdict(["real", "uncertain", "fake"]) == "fake"
    assert picture_verdict(["real", "uncertain"]) == "uncertain"
    assert picture_verdict(["real", "real"]) == "real"


def test_a_group_answer_names_the_manipulated_face(predictor):
    from deepfake_detector.inference import Prepared, Predictor
    from deepfake_detector.faces import Face, Framing, Region

    faces = [Face((10 + 60 * i, 10, 50, 50), 0.9, np.zeros((6, 2))) for i in range(3)]
    framing = Framing([Region(None, f.box, f) for f in faces], "faces")
    prepared = Prepared(None, np.zeros((3, 8, 8, 3), np.uint8), framing, [])
    rules = DecisionRules(0.8, (0.7, 0.8), (0.8, 0.85, 0.9))
    pred = Predictor._scored(_with_rules(predictor, rules), "group.jpg", np.array([0.05, 0.1, 0.97]), prepared)
    assert pred.verdict == "fake" and pred.deciding_face.index == 3
    assert pred.p_fake == 0.97 and pred.label == "fake" and pred.confidence == pytest.approx(0.97)
    assert "face 3 of 3 looks manipulated" in pred.notes
    assert pred.headline.startswith("Fake (face 3 of 3)")
    # 0.87 would be fake alone, but not among three faces.
    pred = Predictor._scored(_with_rules(predictor, rules), "group.jpg", np.array([0.05, 0.1, 0.87]), prepared)
    assert pred.verdict == "uncertain" and [f.verdict for f in pred.faces] == ["real", "real", "uncertain"]


def _with_rules(predictor, rules):
    import copy

    clone = copy.copy(predictor)
    clone.rules, clone.threshold, clone.unfamiliarity = rules, rules.threshold, None
    return clone


# -- unfamiliar faces ----------------------------------------------------------------------------------
def test_unfamiliarity_separates_a_new_cluster_and_survives_a_round_trip(tmp_path):
    rng = np.random.default_rng(2)

    def cloud(n, centres, spread=1.0):
        return np.abs(np.concatenate([c + rng.normal(0, spread, (n, c.size)) for c in centres]))

    centres = rng.normal(0, 1, (4, 64)) * 3
    train, val = cloud(300, centres), cloud(50, centres)
    stranger = cloud(100, [rng.normal(0, 1, 64) * 6])
    # Two parts, as a model exports them: the stranger is unlike the Train faces in the second only.
    styles = rng.normal(0, 1, (4, 16)) * 3
    train2, val2 = np.c_[train, cloud(300, styles)], np.c_[val, cloud(50, styles)]
    stranger2 = np.c_[cloud(100, centres[:1]), cloud(100, [rng.normal(0, 1, 16) * 6])]
    for t, v, s, bounds in ((train, val, stranger, None), (train2, val2, stranger2, [0, 64])):
        u = Unfamiliarity.fit(t, v, bounds, keep=0.95, dims=16)
        assert (u.score(v) <= u.cutoff).mean() == pytest.approx(0.95, abs=0.01)
        assert (u.score(s) > u.cutoff).mean() > 0.9
        u.save(tmp_path / "u.npz")
        back = Unfamiliarity.load(tmp_path / "u.npz")
        assert len(back.parts) == len(bounds or [0]) and back.cutoff == pytest.approx(u.cutoff)
        np.testing.assert_allclose(back.score(s), u.score(s), atol=0.02)


def test_an_older_bundle_without_the_new_statistics_loads_with_a_clear_note(bundle_dir, tmp_path):
    from deepfake_detector import bundle
    from deepfake_detector.inference import Predictor
    from deepfake_detector.ood import UNFAMILIARITY_FILE

    old = tmp_path / "old"
    shutil.copytree(bundle_dir, old)
    (old / UNFAMILIARITY_FILE).unlink(missing_ok=True)
    metrics = json.loads((old / "metrics.json").read_text())
    for key in ("group_thresholds", "unfamiliarity", "max_false_alarm"):
        metrics["serving"].pop(key, None)
    (old / "metrics.json").write_text(json.dumps(metrics))
    bundle.write_manifest(old)
    predictor = Predictor(old)
    info = predictor.info()
    assert info["unfamiliarity"] is None and info["group_thresholds"] == []
    assert any("no unfamiliarity statistics" in n for n in info["bundle_notes"])
    assert any("no group-picture thresholds" in n for n in info["bundle_notes"])
    pred = predictor.predict(np.asarray(Image.open(next(old.glob("examples/*.jpg")))))
    assert pred.error is None and pred.verdict in ("real", "fake", "uncertain")
    assert all(f.unfamiliarity is None for f in pred.faces)


def test_a_sealed_bundle_carries_the_new_statistics(predictor, bundle_dir):
    metrics = json.loads((bundle_dir / "metrics.json").read_text())
    serving = metrics["serving"]
    assert len(serving["group_thresholds"]) >= 2 and serving["group_thresholds"][0] == serving["threshold"]
    assert serving["unfamiliarity"]["cutoff"] > 0
    assert predictor.unfamiliarity is not None and predictor.bundle_notes == []
    trust = metrics["test"]["trust"]
    for row in trust.values():
        assert row["right"] + row["uncertain"] + row["wrong"] == pytest.approx(1.0)
    assert 0.0 <= metrics["test"]["real_composites"]["called_fake"] <= 1.0
    pred = predictor.predict(next(bundle_dir.glob("examples/*.jpg")))
    assert all(f.unfamiliarity is not None for f in pred.faces)


# -- faces beside a large face, rows of portraits -----------------------------------------------------------
def _side_by_side(*pictures: np.ndarray, height: int) -> np.ndarray:
    parts = [np.asarray(Image.fromarray(p).resize((round(p.shape[1] * height / p.shape[0]), height))) for p in pictures]
    return np.concatenate(parts, axis=1)


def _hopper() -> np.ndarray:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def test_a_smaller_face_beside_a_large_sure_one_is_still_found():
    # Eileen Collins (~120 px face) beside Grace Hopper, 1112 x 600: the whole-picture pass finds only
    # Hopper, large and sure; the small face must still be looked for, or it would go unscored.
    picture = _side_by_side(skimage.data.astronaut(), _hopper(), height=600)
    faces = detect_faces(picture)
    assert len(faces) == 2
    centres = sorted(f.box[0] + f.box[2] / 2 for f in faces)
    assert centres[0] < 512 < centres[1]


def _on_backdrop(picture: np.ndarray, width: int, height: int) -> np.ndarray:
    """A studio portrait: the picture, scaled to `height`, centred on a plain backdrop."""
    scaled = _side_by_side(picture, height=height)
    canvas = np.full((height, width, 3), 200, np.uint8)
    left = (width - scaled.shape[1]) // 2
    canvas[:, left:left + scaled.shape[1]] = scaled
    return canvas


def test_every_face_of_a_row_of_portraits_is_found():
    portraits = [_hopper(), skimage.data.astronaut(), _hopper()[:, ::-1]]
    row = np.concatenate([_on_backdrop(p, 700, 492) for p in portraits], axis=1)
    assert row.shape == (492, 2100, 3)
    framing = frame_faces(row)
    assert framing.kind == "faces" and len(framing.regions) == 3


# -- the flat-colour note ----------------------------------------------------------------------------------
def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_a_photo_on_a_plain_studio_backdrop_is_not_called_a_drawing():
    face = _hopper()[40:440, 60:460]
    studio = np.full((1024, 1024, 3), 236, np.uint8)  # a plain, evenly lit backdrop
    studio[300:700, 312:712] = face
    loaded = load_image(_jpeg(studio))
    framing = frame_faces(loaded.rgb)
    assert framing.kind in ("faces", "face_crop")
    assert not any("drawing" in n for n in input_notes(loaded, framing, 160))


def test_drawings_screenshots_and_graphics_still_get_the_note():
    drawing = np.full((400, 400, 3), 255, np.uint8)  # flat fills, hard edges
    drawing[100:300, 120:280] = (250, 210, 170)
    drawing[160:180, 150:180] = (40, 40, 40)
    drawing[160:180, 220:250] = (40, 40, 40)
    drawing[240:250, 170:230] = (200, 40, 40)
    screenshot = np.full((600, 900, 3), 245, np.uint8)
    screenshot[:60] = (30, 60, 120)
    screenshot[100:500, 50:300] = (220, 220, 230)
    for picture in (drawing, screenshot):
        loaded = load_image(picture)
        assert any("drawing, screenshot or graphic" in n for n in input_notes(loaded, frame_faces(loaded.rgb), 160))

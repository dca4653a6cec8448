"""Uncertain band, per-source metrics for one-class sources, and out-of-distribution notes."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from deepfake_detector.config import TrainConfig
from deepfake_detector.evaluation import choose_uncertain_band, per_source, selective
from deepfake_detector.faces import frame_faces
from deepfake_detector.imaging import load_image
from deepfake_detector.ood import flat_fraction, input_notes


def test_band_covers_scores_where_local_precision_is_low():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(4000), np.ones(4000)].astype(int)
    p = np.r_[rng.normal(0.4, 0.2, 4000), rng.normal(0.6, 0.2, 4000)]
    low, high = choose_uncertain_band(p, labels, 0.5, min_precision=0.8)
    # Two unit-variance-like Gaussians: P(fake | s) = 0.8 where exp(5 s - 2.5) = 4, s = 0.777 (0.223 below).
    assert abs(low - 0.223) < 0.05 and abs(high - 0.777) < 0.05
    # Outside the band every verdict region is right at least 80% of the time...
    assert labels[p >= high].mean() >= 0.8 and 1 - labels[p < low].mean() >= 0.8
    # ...while just inside its edges it is not.
    assert labels[(p >= high - 0.1) & (p < high)].mean() < 0.8
    assert 1 - labels[(p >= low) & (p < low + 0.1)].mean() < 0.8


def test_band_does_not_vanish_for_a_good_model():
    """A cumulative rule returns no band once 90% of all fake verdicts are right; scores at the
    threshold are still coin flips and must stay uncertain."""
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(2000), np.ones(2000)].astype(int)
    p = 1 / (1 + np.exp(-np.r_[rng.normal(-3, 1.5, 2000), rng.normal(3, 1.5, 2000)]))
    assert labels[p >= 0.5].mean() > 0.95  # overall precision is high
    low, high = choose_uncertain_band(p, labels, 0.5, min_precision=0.8)
    assert low < 0.5 < high and 0 < ((p >= low) & (p < high)).mean() < 0.2


def test_band_is_empty_for_a_perfect_separation():
    labels = np.r_[np.zeros(50), np.ones(50)].astype(int)
    p = np.r_[np.linspace(0.0, 0.3, 50), np.linspace(0.7, 1.0, 50)]
    low, high = choose_uncertain_band(p, labels, 0.5)
    assert high - low <= 0.5 and not ((p >= low) & (p < high)).any()


def test_selective_accuracy_counts_only_confident_verdicts():
    labels = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.55, 0.45, 0.9])
    s = selective(labels, p, 0.5, [0.4, 0.6])
    assert s == {"uncertain_rate": 0.5, "selective_accuracy": 1.0}


def test_one_class_sources_report_recall_or_specificity():
    paths = ["sdfd_1.jpg", "sdfd_2.jpg", "celeba_1.jpg", "celeba_2.jpg", "dfdc_1.jpg", "dfdc_2.jpg"]
    labels = np.array([1, 1, 0, 0, 1, 0])
    p = np.array([0.9, 0.2, 0.1, 0.3, 0.8, 0.4])
    rows = per_source(paths, labels, p, 0.5, band=[0.5, 0.5])
    assert rows["sdfd"]["accuracy"] == 0.5 and rows["sdfd"]["roc_auc"] is None
    assert "fake recall" in rows["sdfd"]["classes"] and "real specificity" in rows["celeba"]["classes"]
    assert rows["celeba"]["accuracy"] == 1.0 and rows["dfdc"]["roc_auc"] == 1.0


def _jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def photo(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(128, 30, (200, 240, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("quality,flagged", [(20, True), (45, True), (75, False), (95, False)])
def test_low_jpeg_quality_is_named(quality, flagged):
    loaded = load_image(_jpeg(photo(), quality))
    assert loaded.jpeg_quality == quality
    notes = input_notes(loaded, frame_faces(loaded.rgb), 160)
    assert any(f"quality about {quality}" in n for n in notes) == flagged


def test_grayscale_drawing_and_clean_photo():
    gray = load_image(np.repeat(photo()[..., :1], 3, axis=2))
    assert any("grayscale" in n for n in input_notes(gray, frame_faces(gray.rgb), 160))
    drawing = np.full((300, 300, 3), 255, np.uint8)
    drawing[50:250, 100:110] = (0, 0, 255)
    drawing[120:130, 20:280] = (255, 0, 0)
    assert flat_fraction(drawing) > 0.9
    loaded = load_image(drawing)
    assert any("drawing, screenshot or graphic" in n for n in input_notes(loaded, frame_faces(loaded.rgb), 160))
    clean = load_image(_jpeg(photo(1), 90))
    assert input_notes(clean, frame_faces(clean.rgb), 160) == []


def test_config_base_is_merged(tmp_path):
    (tmp_path / "base.json").write_text(json.dumps({"epochs": 7, "seed": 3, "extra": {"a": 1}}))
    (tmp_path / "run.json").write_text(json.dumps({"base": "base.json", "epochs": 2, "extra": {"b": 2}}))
    cfg = TrainConfig.from_json(tmp_path / "run.json")
    assert (cfg.epochs, cfg.seed, cfg.extra) == (2, 3, {"a": 1, "b": 2})
    (tmp_path / "loop.json").write_text(json.dumps({"base": "loop.json"}))
    with pytest.raises(ValueError, match="loop"):
        TrainConfig.from_json(tmp_path / "loop.json")

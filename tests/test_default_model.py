"""The bundled model that `python app.py` serves offline: complete, verified, small, documented."""

from __future__ import annotations

import json

from conftest import ROOT
from deepfake_detector import bundle
from deepfake_detector.inference import Predictor

DEFAULT = ROOT / "models" / "default"


def test_bundled_model_verifies_and_is_small():
    manifest = bundle.verify(DEFAULT)
    assert sum(entry["size"] for entry in manifest["files"].values()) <= 25 * 1024 * 1024


def test_bundled_model_records_how_it_scored():
    metrics = json.loads((DEFAULT / "metrics.json").read_text())
    assert metrics["test"]["n"] > 1000
    assert set(metrics["test"]["per_source"]) == {"dfdc", "gan140k", "tpdne", "celeba", "sdfd", "sdfdfull", "london"}
    assert metrics["test"]["per_source"]["sdfd"]["roc_auc"] is None  # one class: recall only
    assert set(metrics["robustness"]) == {"jpeg_q50", "half_size"}
    assert {"a", "b"} <= set(metrics["serving"]["calibration"])
    low, high = metrics["serving"]["uncertain_band"]
    assert low <= metrics["serving"]["threshold"] <= high + 1e-6  # edges rounded to 6 places when sealed
    # The rules that protect real people, and the figures that show how well they do.
    assert metrics["serving"]["group_thresholds"][0] == metrics["serving"]["threshold"]
    assert metrics["serving"]["unfamiliarity"]["cutoff"] > 0 and (DEFAULT / "unfamiliarity.npz").is_file()
    assert metrics["test"]["trust"]["all/real"]["n"] > 1000 and metrics["test"]["real_composites"]["n"] > 0
    assert set(metrics["test"]["unfamiliarity_left_out"]) == set(metrics["test"]["per_source"])
    quantization = metrics["model"]["quantization"]
    assert quantization["served"] in ("float16", "float32")
    assert quantization["tflite_bytes"] == (DEFAULT / "model.tflite").stat().st_size
    config = json.loads((DEFAULT / "config.json").read_text())
    assert config["command"].startswith("python train.py --config configs/")
    assert config["train_seconds"] > 0 and config["environment"]["cpu_count"]


def test_bundled_examples_are_the_redistributable_ones():
    names = sorted(p.name for p, _ in bundle.examples(DEFAULT))
    assert names and all(n.startswith(("real_", "fake_")) for n in names)
    shipped = sorted(p.name for p in (ROOT / "assets" / "examples").rglob("*.jpg"))
    assert len(names) == len(shipped) == 6


def test_bundled_model_scores_an_example():
    predictor = Predictor(DEFAULT)
    real_example = next(p for p, label in bundle.examples(DEFAULT) if label == "real")
    pred = predictor.predict(real_example)
    assert pred.error is None and pred.face_found is True and 0.0 <= pred.p_fake <= 1.0
    assert pred.verdict in ("fake", "real", "uncertain") and len(pred.faces) == 1
    assert pred.faces[0].unfamiliarity is not None and predictor.bundle_notes == []

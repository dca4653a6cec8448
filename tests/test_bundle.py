"""Bundle integrity: tampering, incompleteness and code-carrying models are refused."""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest

from deepfake_detector import bundle
from deepfake_detector.errors import BundleError
from deepfake_detector.inference import Predictor


@pytest.fixture
def copy(bundle_dir, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(bundle_dir, target)
    return target


def test_changed_file_is_refused(copy):
    data = bytearray((copy / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256 of model.tflite"):
        Predictor(copy)


def test_missing_manifest_means_incomplete(copy):
    (copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match="not a complete model bundle"):
        Predictor(copy)


def test_missing_listed_file(copy):
    (copy / "metrics.json").unlink()
    with pytest.raises(BundleError, match="metrics.json is listed in the manifest but missing"):
        bundle.verify(copy)


def test_lambda_layer_model_is_refused(copy):
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    keras.Model(inputs, outputs).save(copy / "model.keras")
    bundle.write_manifest(copy)  # even with a matching manifest
    with pytest.raises(BundleError, match="Lambda layer"):
        Predictor(copy)
    with pytest.raises(BundleError, match="Lambda layer"):
        bundle.load_keras_model(copy)


def test_finalize_replaces_atomically(copy, tmp_path):
    staging = tmp_path / "new.partial"
    shutil.copytree(copy, staging)
    (staging / "manifest.json").unlink()
    (staging / "backup").mkdir()
    out = bundle.finalize(staging, copy)
    assert not staging.exists() and not (out / "backup").exists()
    bundle.verify(out)


def test_keras_fallback_backend_matches(copy):
    (copy / "model.tflite").unlink()
    bundle.write_manifest(copy)
    p = Predictor(copy)
    assert p.backend == "keras"
    x = np.full((1, p.image_size, p.image_size, 3), 120, np.uint8)
    assert 0.0 <= p.raw_scores(x)[0] <= 1.0


def test_refused_hub_model_falls_back_to_bundled(copy, bundle_dir, monkeypatch, caplog):
    """A Hub bundle that verifies but carries code is refused; the app serves the bundled model."""
    from deepfake_detector import hub, served_model

    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x + 1)(inputs)).save(copy / "model.keras")
    bundle.write_manifest(copy)
    monkeypatch.setenv("DEEPFAKE_BUNDLED_MODEL", str(bundle_dir))
    monkeypatch.setattr(hub, "resolve_model",
                        lambda: hub.ResolvedModel(copy, "hub someone/model@abc", None))
    caplog.set_level("INFO")
    predictor = served_model.load_served_predictor()
    assert predictor.folder == bundle_dir and predictor.source.startswith("bundled")
    assert "Lambda layer" in predictor.fallback_reason
    assert caplog.text.count("Lambda layer") == 1  # logged once, by the one module that decides

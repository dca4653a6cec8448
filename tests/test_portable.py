"""Training elsewhere: pack -> portable train -> `train.py --trained-weights` seals the bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_train
from deepfake_detector import bundle
from deepfake_detector.data import Augmentation
from deepfake_detector.portable import WEIGHTS_FILE, augment_array, read_packs
from deepfake_detector.selfblend import HULL_POINTS

CONFIG = {"architecture": "compact", "image_size": 48, "load_size": 56, "width": 8, "batch_size": 8, "epochs": 2,
          "seed": 7, "learning_rate": 0.001, "crop_scale_min": 0.8, "self_blend_prob": 0.3}


def _portable(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "deepfake_detector.portable", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def portable_run(tmp_path_factory, dataset):
    work = tmp_path_factory.mktemp("portable")
    config = work / "config.json"
    config.write_text(json.dumps(CONFIG))
    packed = _portable(["pack", "--config", str(config), "--data-dir", str(dataset.parent), "--out",
                        str(work / "packs"), "--chunk-mb", "0.05"], cwd=work)
    assert packed.returncode == 0, packed.stderr[-2000:]
    trained = _portable(["train", "--config", str(config), "--packs", str(work / "packs"), "--out",
                         str(work / "run"), "--workers", "2"], cwd=work)
    assert trained.returncode == 0, trained.stderr[-3000:]
    return work, trained


def test_packs_hold_every_image_in_small_chunks(portable_run, dataset):
    packs = portable_run[0] / "packs"
    chunks = sorted(packs.glob("train-*.npz"))
    assert len(chunks) > 1 and all(c.stat().st_size < 0.05e6 + 20_000 for c in chunks)
    train = read_packs(packs, "Train")
    assert train.images.shape == (80, 56, 56, 3) and train.images.dtype == np.uint8
    expected = sorted((p.name, int(p.parent.name == "Fake")) for p in (dataset / "Train").glob("*/*.jpg"))
    assert sorted(zip(train.names, train.labels.astype(int).tolist())) == expected  # every file once, with its label
    # Face outlines for self-blending travel with Train (NaN for fakes; these generated reals have no face).
    assert train.hulls.shape == (80, HULL_POINTS, 2) and np.isnan(train.hulls[train.labels == 1]).all()
    val = read_packs(packs, "Validation")
    assert val.images.shape[1:] == (48, 48, 3) and val.hulls is None  # at the model's size, as train.py decodes it


def test_portable_run_records_its_epochs_and_best_weights(portable_run):
    run_dir = portable_run[0] / "run"
    run = json.loads((run_dir / "run.json").read_text())
    history = (run_dir / "history.csv").read_text().splitlines()
    assert run["epochs_run"] == 2 and len(history) == 3 and "val_auc" in history[0]
    assert 1 <= run["best_epoch"] <= 2 and run["environment"]["backend"]
    assert "epoch 2/2" in portable_run[1].stderr and "img/s" in portable_run[1].stderr


def test_train_py_seals_a_bundle_from_the_portable_weights(portable_run, dataset, tmp_path):
    work = portable_run[0]
    args = ["--config", str(work / "config.json"), "--data-dir", str(dataset.parent), "--no-robustness",
            "--trained-weights", str(work / "run")]
    sealed = run_train([*args, "--out", str(tmp_path / "bundle")], cwd=tmp_path)
    assert sealed.returncode == 0, sealed.stderr[-3000:]
    assert "adopted the weights" in sealed.stderr
    bundle.verify(tmp_path / "bundle")
    config = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert config["trained_elsewhere"]["epochs_run"] == 2 and "sealing_environment" in config
    assert "deepfake_detector.portable" in (tmp_path / "bundle" / "README.md").read_text()  # the card says so
    model = bundle.load_keras_model(tmp_path / "bundle")
    with np.load(work / "run" / WEIGHTS_FILE) as z:
        assert all(np.array_equal(w, z[f"arr_{i}"]) for i, w in enumerate(model.get_weights()))

    other = run_train([*args, "--width", "16", "--out", str(tmp_path / "other")], cwd=tmp_path)
    assert other.returncode == 2 and "trained with other settings: width=8" in other.stderr
    assert "Traceback" not in other.stderr


def test_augment_array_is_seeded_and_keeps_shape():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (56, 56, 3), dtype=np.uint8)
    aug = Augmentation(crop_scale_min=0.8, rescale_prob=0.5, jpeg_prob=0.5, jpeg_quality_min=40)
    first = augment_array(image, 48, aug, np.random.default_rng(3))
    assert first.shape == (48, 48, 3) and first.dtype == np.uint8
    assert np.array_equal(first, augment_array(image, 48, aug, np.random.default_rng(3)))
    assert not np.array_equal(first, augment_array(image, 48, aug, np.random.default_rng(4)))
    # Colour jitter is bounded: brightness +-20, contrast 0.85-1.15 around the mean.
    assert abs(float(first.mean()) - float(image.mean())) < 25

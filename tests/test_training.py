"""train.py end to end on a generated dataset: bundle contents, metrics, export, CLI errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_train
from deepfake_detector import bundle
from deepfake_detector.errors import BundleError

EXPECTED_FILES = {"model.keras", "model.tflite", "config.json", "metrics.json", "history.csv", "README.md",
                  "plots/confusion_matrix.png", "plots/roc_curve.png", "plots/training_curves.png"}


def test_bundle_is_complete_and_hashes_match(bundle_dir):
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    listed = set(manifest["files"])
    assert EXPECTED_FILES <= listed
    assert any(name.startswith("examples/real_") for name in listed)
    assert any(name.startswith("examples/fake_") for name in listed)
    for name, entry in manifest["files"].items():
        assert bundle.sha256_file(bundle_dir / name) == entry["sha256"], name
    assert not (bundle_dir / "backup").exists()
    assert not bundle_dir.with_name(bundle_dir.name + ".partial").exists()
    bundle.verify(bundle_dir)


def test_metrics_are_consistent_and_model_learned(bundle_dir):
    m = json.loads((bundle_dir / "metrics.json").read_text())
    test = m["test"]
    cm = test["confusion_matrix"]
    tn, fp, fn, tp = cm["tn"], cm["fp"], cm["fn"], cm["tp"]
    assert tn + fp + fn + tp == test["n"] == 80
    assert test["accuracy"] == pytest.approx((tp + tn) / test["n"])
    assert test["precision"] == pytest.approx(tp / (tp + fp))
    assert test["recall"] == pytest.approx(tp / (tp + fn))
    assert test["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    # The generated fakes carry a strong artefact: far above chance after 4 epochs.
    assert test["accuracy"] >= 0.85 and test["roc_auc"] >= 0.9
    assert 0.0 < m["serving"]["threshold"] < 1.0
    assert set(test["per_source"]) == {"synA", "synB"}
    assert set(m["robustness"]) == {"jpeg_q50", "half_size"}
    assert m["model"]["tflite_max_abs_diff"] <= 1e-4


def test_config_records_the_run(bundle_dir, dataset):
    config = json.loads((bundle_dir / "config.json").read_text())
    assert config["seed"] == 7 and config["image_size"] == 48 and config["epochs"] == 4
    assert config["dataset"]["counts"]["Train"] == {"Fake": 40, "Real": 40}
    assert config["environment"]["tensorflow"] and config["environment"]["keras"]
    assert "--seed 7" in config["command"]
    with open(bundle_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == config["epochs_run"] == 4
    assert {"accuracy", "loss", "val_accuracy", "val_loss", "auc"} <= set(rows[0])


def test_tflite_and_keras_agree(bundle_dir, dataset):
    """The served (TFLite) path and the Keras model give the same scores on real images."""
    from deepfake_detector.inference import Predictor

    lite = Predictor(bundle_dir)
    keras_pred = Predictor(bundle_dir, backend="keras")
    files = sorted((dataset / "Test").rglob("*.jpg"))[::5]
    batch = np.concatenate([lite.prepare(f, crop=False).inputs for f in files])
    quantization = lite.metrics["model"]["quantization"]
    # The float export is checked to 1e-4 at export time; a float16 copy is served only when it kept
    # Validation AUC, and then stays close to the float model on every image.
    assert lite.metrics["model"]["tflite_max_abs_diff"] <= 1e-4
    tolerance = 1e-4 if quantization["served"] == "float32" else 0.03
    np.testing.assert_allclose(lite.raw_scores(batch), keras_pred.raw_scores(batch), atol=tolerance)
    assert quantization["tflite_bytes"] == (bundle_dir / "model.tflite").stat().st_size


def test_keras_model_loads_in_safe_mode(bundle_dir):
    model = bundle.load_keras_model(bundle_dir)
    out = np.asarray(model(np.zeros((2, 50, 70, 3), np.float32), training=False))
    assert out.shape == (2, 1) and np.all((out >= 0) & (out <= 1))  # resizing happens inside


def test_progress_is_one_line_per_epoch(trained):
    _, result = trained
    log = result.stdout + result.stderr
    epoch_lines = [line for line in log.splitlines() if " epoch " in line and "/4: " in line]
    assert [line.split(" epoch ")[1][:4] for line in epoch_lines] == ["1/4:", "2/4:", "3/4:", "4/4:"]
    assert all("val_auc" in line and "min left" in line for line in epoch_lines)
    # Nothing that looks like an error on a clean run.
    for noise in ("UserWarning", "ran out of data", "Unknown", "Traceback"):
        assert noise not in log
    assert "bundle written to" in log


@pytest.mark.parametrize("case,expected", [
    ("missing_split", "no images in Validation/Fake, Validation/Real"),
    ("empty_class", "no images in Train/Real"),
    ("wrong_layout", "does not have the expected layout"),
    ("not_found", "data folder not found"),
])
def test_bad_dataset_gives_one_clear_message(tmp_path, case, expected):
    from synthetic import make_dataset

    root = tmp_path / "ds"
    if case == "missing_split":
        make_dataset(root, per_class=2, splits=("Train", "Test"))
    elif case == "empty_class":
        make_dataset(root, per_class=2)
        for f in (root / "Train" / "Real").iterdir():
            f.unlink()
    elif case == "wrong_layout":
        (root / "images").mkdir(parents=True)
    result = run_train(["--data-dir", str(root), "--epochs", "1"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    if case == "missing_split":
        assert "Train: Fake=2, Real=2" in result.stderr and "Validation: Fake=missing" in result.stderr


def test_missing_kaggle_credentials(tmp_path):
    env_home = tmp_path / "home"
    env_home.mkdir()
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--epochs", "1"], cwd=tmp_path,
                            env={k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")} | {"HOME": str(env_home)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "no Kaggle credentials found" in result.stderr and "Traceback" not in result.stderr


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    from synthetic import make_dataset

    from deepfake_detector.data import decode, scan

    root = make_dataset(tmp_path / "ds", per_class=4, size=32)
    (root / "Train" / "Fake" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "Train" / "Real" / "empty.jpg").write_bytes(b"")
    splits = scan(root)
    train = decode(splits["Train"], 32, workers=1)
    assert len(train.paths) == 8 and train.images.shape == (8, 32, 32, 3)
    assert len(train.skipped) == 2
    assert any("empty" in s for s in train.skipped)


def test_dataset_under_dataset_folder_and_max_per_class(tmp_path):
    from synthetic import make_dataset

    from deepfake_detector.data import scan

    make_dataset(tmp_path / "kaggle" / "Dataset", per_class=6, size=16)
    splits = scan(tmp_path / "kaggle", max_per_class=3, seed=1)
    assert splits["Train"].counts() == {"Fake": 3, "Real": 3}
    assert splits["Test"].counts() == {"Fake": 3, "Real": 3}


def test_kaggle_download_uses_opendatasets(tmp_path, monkeypatch):
    """Without --data-dir the Kaggle dataset is fetched with opendatasets (stubbed at its boundary)."""
    import opendatasets
    from synthetic import make_dataset

    from deepfake_detector.data import download_kaggle

    calls = []

    def fake_download(url, data_dir):
        calls.append(url)
        make_dataset(Path(data_dir) / "deepfake-and-real-images" / "Dataset", per_class=2, size=16)

    monkeypatch.setattr(opendatasets, "download", fake_download)
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret-kaggle-key")
    root = download_kaggle(tmp_path / "data")
    assert calls == ["https://www.kaggle.com/datasets/manjilkarki/deepfake-and-real-images"]
    assert root == tmp_path / "data" / "deepfake-and-real-images" / "Dataset"
    download_kaggle(tmp_path / "data")  # already there: no second download
    assert len(calls) == 1


def test_interrupted_training_resumes_to_the_same_epoch_count(tmp_path, dataset):
    """Kill train.py mid-run; --resume finishes with as many epochs as an uninterrupted run."""
    out = tmp_path / "run"
    args = ["--data-dir", str(dataset.parent), "--out", str(out), "--epochs", "6", "--image-size", "32",
            "--width", "8", "--batch-size", "8", "--patience", "50", "--no-robustness"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = ""
    deadline = time.time() + 240
    while "epoch 2/6:" not in seen and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
    assert "epoch 2/6:" in seen, seen[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    partial = out.with_name("run.partial")
    assert partial.is_dir() and not (partial / "manifest.json").exists()
    assert not out.exists()
    with pytest.raises(BundleError, match="not a complete model bundle|not found"):
        bundle.verify(partial)

    result = run_train([*args, "--resume"], cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "epoch 1/6:" not in result.stdout + result.stderr  # it did not start over
    config = json.loads((out / "config.json").read_text())
    assert config["epochs_run"] == 6
    with open(out / "history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)][-1] == 5  # 0-based: six epochs
    bundle.verify(out)


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, dataset):
    """--strategy mirrored trains on two logical CPU devices (the multi-GPU code path)."""
    script = f"""
import sys, tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, {str(ROOT / 'src')!r})
from deepfake_detector.training import main
sys.exit(main(['--data-dir', {str(dataset.parent)!r}, '--out', {str(tmp_path / 'mirrored')!r},
               '--strategy', 'mirrored', '--epochs', '1', '--image-size', '32', '--width', '8',
               '--batch-size', '8', '--no-robustness', '--max-per-class', '16']))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 replica(s), global batch 16" in result.stderr
    bundle.verify(tmp_path / "mirrored")


def test_reevaluate_rewrites_metrics_and_manifest(bundle_dir, dataset, tmp_path):
    import shutil

    from deepfake_detector.evaluation import reevaluate

    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    (copy / "plots" / "roc_curve.png").unlink()
    bundle.write_manifest(copy)
    metrics = reevaluate(copy, dataset.parent, robustness=False)
    assert (copy / "plots" / "roc_curve.png").is_file()
    assert json.loads((copy / "metrics.json").read_text())["test"]["n"] == metrics["test"]["n"] == 80
    assert "robustness" not in metrics and metrics["model"]["parameters"] > 0
    bundle.verify(copy)


def test_init_from_an_earlier_bundle(bundle_dir, dataset, tmp_path):
    common = ["--data-dir", str(dataset.parent), "--epochs", "1", "--batch-size", "8", "--max-per-class", "8",
              "--no-robustness", "--init-from", str(bundle_dir)]
    wrong = run_train([*common, "--out", str(tmp_path / "wrong"), "--image-size", "48", "--width", "16"],
                      cwd=tmp_path)
    assert wrong.returncode == 2 and "does not match this run's architecture" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    ok = run_train([*common, "--out", str(tmp_path / "ok"), "--image-size", "48", "--width", "8"], cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert f"starting from the weights of {bundle_dir}" in ok.stderr
    assert json.loads((tmp_path / "ok" / "config.json").read_text())["init_from"] == str(bundle_dir)


def test_source_balance_repeats_small_sources_and_keeps_images_with_labels():
    from deepfake_detector.data import Split, epoch_indices, make_tf_dataset

    names = [f"big_{i}.jpg" for i in range(16)] + [f"small_{i}.jpg" for i in range(4)] + ["tiny_0.jpg"]
    labels = np.array([i % 2 for i in range(len(names))], dtype=np.int32)
    # Pixel value = 10 x index + label: every yielded image says which file and label it came from.
    images = np.stack([np.full((4, 4, 3), 10 * i + labels[i], np.uint8) for i in range(len(names))])
    split = Split("Train", [Path(n) for n in names], labels, images)

    assert np.array_equal(epoch_indices(split, 0.0), np.arange(21))
    counts = np.bincount(epoch_indices(split, 0.5), minlength=21)
    assert counts[:16].tolist() == [1] * 16 and counts[16:20].tolist() == [2] * 4 and counts[20] == 4
    counts = np.bincount(epoch_indices(split, 1.0), minlength=21)
    assert counts[16] == 4 and counts[20] == 16

    seen = []
    for x, y in make_tf_dataset(split, 5, training=True, seed=0, indices=epoch_indices(split, 0.5)):
        pixel = x.numpy()[:, 0, 0, 0].astype(int)
        assert np.array_equal(pixel % 10, y.numpy().reshape(-1).astype(int))
        seen += (pixel // 10).tolist()
    assert sorted(seen) == sorted(epoch_indices(split, 0.5).tolist())

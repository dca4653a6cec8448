"""Shared fixtures: a generated dataset and one tiny bundle trained by the real train.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic import make_dataset

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# Enough steps for BatchNorm's moving statistics to settle on 80 training images.
TINY_TRAIN_ARGS = ["--epochs", "4", "--image-size", "48", "--width", "8", "--batch-size", "8", "--seed", "7",
                   "--learning-rate", "0.001"]


def run_train(args: list[str], cwd: Path, timeout: int = 300, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "Dataset", per_class=40, size=48)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, dataset) -> tuple[Path, subprocess.CompletedProcess]:
    """A bundle trained by `python train.py` on the generated dataset (plus the process result)."""
    work = tmp_path_factory.mktemp("train")
    out = work / "bundle"
    result = run_train(["--data-dir", str(dataset.parent), "--out", str(out), *TINY_TRAIN_ARGS], cwd=work)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


@pytest.fixture(scope="session")
def bundle_dir(trained) -> Path:
    return trained[0]


@pytest.fixture(scope="session")
def predictor(bundle_dir):
    from deepfake_detector.inference import Predictor

    return Predictor(bundle_dir)

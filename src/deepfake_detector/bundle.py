"""The bundle: the one contract between training and serving - a folder of files on disk.

    model.keras      Keras model (preprocessing inside; no custom code)
    model.tflite     the same network for fast serving, checked against model.keras
    config.json      every setting of the run, versions, dataset, hardware, wall time
    metrics.json     test metrics, threshold + calibration chosen on Validation
    history.csv      per-epoch training curves
    plots/*.png      confusion matrix, ROC curve, accuracy/loss curves
    examples/*.jpg   a few example images, named real_N / fake_N
    README.md        model card (Hub conventions)
    manifest.json    sha256 of every file above - written last, so no manifest = not complete

Bundles are built in a `<out>.partial` folder and renamed into place, so a crash never
leaves a folder that looks complete.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from . import atomic
from .errors import BundleError

FORMAT = "deepfake-detector-bundle/1"
MANIFEST = "manifest.json"
REQUIRED = ("model.keras", "config.json", "metrics.json", MANIFEST)
# Layer classes that can carry arbitrary Python code: a bundle holding one is refused.
UNSAFE_CLASSES = ("Lambda", "TFSMLayer")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    atomic.write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_manifest(folder: Path) -> dict:
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel != MANIFEST and not rel.startswith(("backup/", ".")):
            files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    manifest = {"format": FORMAT, "files": files}
    write_json(folder / MANIFEST, manifest)
    return manifest


def finalize(staging: Path, out: Path) -> Path:
    """Write the manifest last and move the finished bundle into place atomically."""
    shutil.rmtree(staging / "backup", ignore_errors=True)
    write_manifest(staging)
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)
    return out


def verify(folder: str | Path) -> dict:
    """Check the bundle is complete, untampered and free of code-carrying layers; return manifest."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"model bundle not found: {folder}")
    if not (folder / MANIFEST).is_file():
        raise BundleError(f"{folder} is not a complete model bundle (no {MANIFEST}; "
                          "an interrupted training run leaves no manifest)")
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        raise BundleError(f"{folder / MANIFEST} is not a valid manifest") from None
    for name in REQUIRED[:-1]:
        if name not in files:
            raise BundleError(f"{folder} manifest does not list {name}")
    for rel, entry in files.items():
        path = folder / rel
        if not path.is_file():
            raise BundleError(f"{folder}: {rel} is listed in the manifest but missing")
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            raise BundleError(f"{folder}: sha256 of {rel} is {digest[:12]}..., manifest says "
                              f"{str(entry.get('sha256'))[:12]}...: the file was changed; refusing it")
    check_no_code(folder / "model.keras")
    return manifest


def check_no_code(model_file: Path) -> None:
    """Refuse a .keras file whose architecture contains layers that run arbitrary Python."""
    try:
        with zipfile.ZipFile(model_file) as zf:
            config = json.loads(zf.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        raise BundleError(f"{model_file} is not a valid .keras model file") from None

    def walk(node):
        if isinstance(node, dict):
            if node.get("class_name") in UNSAFE_CLASSES:
                raise BundleError(f"{model_file} contains a {node['class_name']} layer, which can run "
                                  "arbitrary code; refusing to load it")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)


def read_json(folder: Path, name: str) -> dict:
    try:
        return json.loads((Path(folder) / name).read_text())
    except FileNotFoundError:
        raise BundleError(f"{folder} has no {name}") from None
    except ValueError:
        raise BundleError(f"{folder}/{name} is not valid JSON") from None


def load_keras_model(folder: str | Path):
    """Load the bundle's Keras model with safe_mode on (no deserialised Python code)."""
    import keras

    path = Path(folder) / "model.keras"
    check_no_code(path)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for bad files
        raise BundleError(f"could not load {path}: {type(exc).__name__}: {exc}") from None


def examples(folder: str | Path) -> list[tuple[Path, str]]:
    """(path, 'real'|'fake') for each example image of the bundle."""
    ex_dir = Path(folder) / "examples"
    if not ex_dir.is_dir():
        return []
    out = []
    for path in sorted(ex_dir.iterdir()):
        label = path.name.split("_", 1)[0].lower()
        if label in ("real", "fake"):
            out.append((path, label))
    return out


BUNDLED_ENV = "DEEPFAKE_BUNDLED_MODEL"


def bundled_model_dir() -> Path:
    """The model shipped in the repo (`models/default`), or $DEEPFAKE_BUNDLED_MODEL if set."""
    override = os.environ.get(BUNDLED_ENV)
    return Path(override) if override else Path(__file__).resolve().parents[2] / "models" / "default"


def read_history(path: Path) -> dict[str, list[float]]:
    """history.csv as columns; on a resumed run keeps the last row written for each epoch."""
    if not path.exists():
        return {}
    rows: dict[int, dict] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = row
    cols: dict[str, list[float]] = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if key != "epoch":
                cols.setdefault(key, []).append(float(value))
    return cols

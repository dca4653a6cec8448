"""How well a model catches classic face swaps it was never trained on.

    python scripts/measure_swaps.py ../shared/data/faces/Dataset [--models models/default ...] [--n 300]

From the Test split's real images (faces no model trained on), each target face gets the face of
another real person pasted in: FaceMesh landmarks of both faces, the source warped onto the
target by the similarity transform between them, colour matched inside the face (mean and spread
per channel), and blended through the target's feathered face outline - the classic swap of
early face-swapping tools. Each model scores the swaps and the untouched targets through the
served path (faces found and framed as in the app); printed: ROC AUC (swaps vs originals), and
the share of swaps called fake / uncertain / real at the model's own threshold and band. Writes
JSON (default benchmarks/results/swaps.json).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFilter

from deepfake_detector.data import scan
from deepfake_detector.imaging import load_image
from deepfake_detector.inference import Predictor
from deepfake_detector.selfblend import face_landmarks, warp_face_onto

SIDE = 256  # pictures are swapped at this size


def swap(target: np.ndarray, target_points: np.ndarray, source: np.ndarray, source_points: np.ndarray,
         rng: np.random.Generator) -> np.ndarray:
    """`source`'s face pasted onto `target` inside the target's face outline."""
    warped, mask = warp_face_onto(target, target_points, source, source_points)
    inside = np.asarray(mask) > 0
    face = float(np.sqrt(inside.sum()))
    # Colour transfer inside the face: the swap's tools match skin tone before blending.
    w, t = warped.astype(np.float32), target.astype(np.float32)
    w = (w - w[inside].mean(0)) / (w[inside].std(0) + 1e-3) * t[inside].std(0) + t[inside].mean(0)
    mask = mask.filter(ImageFilter.GaussianBlur(rng.uniform(0.03, 0.08) * face))
    alpha = np.asarray(mask, np.float32)[..., None] / 255.0
    return np.clip(np.round(alpha * w + (1 - alpha) * t), 0, 255).astype(np.uint8)


def make_swaps(root: Path, n: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    test = scan(root)["Test"]
    reals = [path for path, label in zip(test.paths, test.labels) if label == 0]
    rng = np.random.default_rng(seed)
    rng.shuffle(reals)
    faces = []
    for path in reals:
        rgb = cv2.resize(load_image(path).rgb, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        points = face_landmarks(rgb)
        if points is not None:
            faces.append((rgb, points))
        if len(faces) >= 2 * n:
            break
    originals, swaps = [], []
    for k in range(0, len(faces) - 1, 2):
        (target, tp), (source, sp) = faces[k], faces[k + 1]
        originals.append(target)
        swaps.append(swap(target, tp, source, sp, rng))
    return originals, swaps


def score(folder: Path, originals: list[np.ndarray], swaps: list[np.ndarray]) -> dict:
    from sklearn.metrics import roc_auc_score

    predictor = Predictor(folder)
    p_real = np.array([predictor.predict(im).p_fake for im in originals])
    p_swap = np.array([predictor.predict(im).p_fake for im in swaps])
    labels = np.r_[np.zeros(len(p_real)), np.ones(len(p_swap))]

    def share(scores: np.ndarray, verdict: str) -> float:  # the served verdict: threshold and uncertain band
        return round(float(np.mean([predictor.verdict_of(p) == verdict for p in scores])), 3)

    return {"model": str(folder), "pairs": len(p_swap),
            "roc_auc": round(float(roc_auc_score(labels, np.r_[p_real, p_swap])), 4),
            "swaps_called_fake": share(p_swap, "fake"),
            "swaps_uncertain": share(p_swap, "uncertain"),
            "swaps_called_real": share(p_swap, "real"),
            "originals_called_fake": share(p_real, "fake"),
            "median_p_fake_swaps": round(float(np.median(p_swap)), 3),
            "median_p_fake_originals": round(float(np.median(p_real)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir")
    parser.add_argument("--models", nargs="+", default=["models/default"])
    parser.add_argument("--n", type=int, default=300, help="number of swaps (and of untouched originals)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="benchmarks/results/swaps.json")
    parser.add_argument("--save-examples", help="folder for a few swaps as JPEG files")
    args = parser.parse_args()
    started = time.time()
    originals, swaps = make_swaps(Path(args.data_dir), args.n, args.seed)
    if args.save_examples:
        Path(args.save_examples).mkdir(parents=True, exist_ok=True)
        for k in range(min(6, len(swaps))):
            Image.fromarray(np.concatenate([originals[k], swaps[k]], 1)).save(Path(args.save_examples) / f"swap_{k}.jpg")
    results = [score(Path(m), originals, swaps) for m in args.models]
    for r in results:
        print(f"{r['model']}: {r['pairs']} swaps, ROC AUC {r['roc_auc']:.3f}; swaps called fake "
              f"{r['swaps_called_fake']:.1%}, uncertain {r['swaps_uncertain']:.1%}, real {r['swaps_called_real']:.1%}; "
              f"originals called fake {r['originals_called_fake']:.1%}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"seconds": round(time.time() - started, 1), "results": results}, indent=2))


if __name__ == "__main__":
    main()

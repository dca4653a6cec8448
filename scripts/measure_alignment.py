"""Would turning face crops so the eyes are level help the served model? Validation scored both ways.

    python scripts/measure_alignment.py ../shared/data/faces/Dataset [--per-class 300] [--json OUT]

Each image goes through the served predictor exactly as the app sends it (decode, faces found
and framed, resized) for the crops as served; the aligned variant takes the same crops turned
about their centre by the roll FaceMesh measures between the eyes (FaceSettings.landmarks on;
areas turned in from outside the picture are mirrored in). A picture's score is its most
suspicious face's, as served.
Printed and written as JSON: accuracy at the served threshold and ROC AUC both ways, overall,
per source and on the faces that lean by 5 degrees or more, plus how far FaceMesh's roll and
BlazeFace's (from its two eye keypoints, free) disagree.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from deepfake_detector.data import scan, source_of
from deepfake_detector.evaluation import binary_metrics
from deepfake_detector.imaging import resize_square
from deepfake_detector.served_model import load_served_predictor

LEANING = 5.0  # degrees: faces whose roll is at least this are reported on their own


def turned(rgb: np.ndarray, box, degrees: float) -> np.ndarray:
    """The square `box` (x, y, s, s) of `rgb`, turned about its centre by `degrees` (eyes made level)."""
    x, y, s, _ = box
    c, si = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    cx, cy = x + s / 2, y + s / 2
    # Output pixel (u, v) -> picture: the box centre + the offset from the output centre, turned.
    to_picture = np.array([[c, -si, cx - (c * s - si * s) / 2], [si, c, cy - (si * s + c * s) / 2]])
    return cv2.warpAffine(rgb, to_picture, (s, s), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT_101)


def score(predictor, path: Path) -> dict:
    prepared = predictor.prepare(path)
    aligned, rolls, unsure = [], [], 0
    for region, served in zip(prepared.framing.regions, prepared.inputs):
        face = region.face
        if face is None or face.landmarks is None:  # scored whole, or FaceMesh doubts the face: not aligned
            aligned.append(served)
            unsure += face is not None
            continue
        (lx, ly), (rx, ry) = face.keypoints[:2]
        rolls.append((face.roll_degrees, float(np.degrees(np.arctan2(ry - ly, rx - lx)))))
        aligned.append(resize_square(turned(prepared.image, region.box, face.roll_degrees), predictor.image_size))
    p = predictor.calibrate(predictor.raw_scores(np.concatenate([prepared.inputs, np.stack(aligned)])))
    n = len(prepared.inputs)
    return {"served": float(p[:n].max()), "aligned": float(p[n:].max()), "rolls": rolls, "unsure": unsure,
            "leaning": any(abs(mesh_roll) >= LEANING for mesh_roll, _ in rolls)}


def metrics(labels: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    m = binary_metrics(labels, p, threshold)
    return {"n": int(len(labels)), "accuracy": round(m["accuracy"], 4),
            "roc_auc": None if m["roc_auc"] is None else round(m["roc_auc"], 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir")
    p.add_argument("--per-class", type=int, default=0, help="sample this many images per class (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/alignment.json"))
    args = p.parse_args()
    val = scan(args.data_dir)["Validation"]
    items = list(zip(val.paths, val.labels.tolist()))
    if args.per_class:
        rng = random.Random(args.seed)
        by_class = [[it for it in items if it[1] == label] for label in (0, 1)]
        items = [it for group in by_class for it in rng.sample(group, min(args.per_class, len(group)))]
    predictor = load_served_predictor()
    predictor.face_settings = replace(predictor.face_settings, landmarks=True)  # FaceMesh: the exact roll
    start = time.perf_counter()
    rows = [score(predictor, path) | {"label": label, "source": source_of(path)} for path, label in items]
    labels = np.array([r["label"] for r in rows])
    groups = {"all": np.ones(len(rows), bool), f"roll >= {LEANING:g} deg": np.array([r["leaning"] for r in rows])}
    by_source = defaultdict(list)
    for i, r in enumerate(rows):
        by_source[r["source"]].append(i)
    for source, idx in sorted(by_source.items()):
        groups[f"source {source}"] = np.isin(np.arange(len(rows)), idx)
    report = {"model": predictor.source, "threshold": predictor.threshold, "images": len(rows),
              "seconds": round(time.perf_counter() - start, 1), "groups": {}}
    print(f"{len(rows)} Validation images, served model {predictor.source}, threshold {predictor.threshold:.3f}")
    print(f"{'group':22s} {'n':>5s}  {'accuracy served/aligned':>24s}  {'ROC AUC served/aligned':>23s}")
    for name, mask in groups.items():
        both = {way: metrics(labels[mask], np.array([r[way] for r in rows])[mask], predictor.threshold)
                for way in ("served", "aligned")}
        report["groups"][name] = both
        auc = lambda m: "  n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.4f}"  # noqa: E731
        print(f"{name:22s} {int(mask.sum()):5d}  {both['served']['accuracy']:11.4f} / {both['aligned']['accuracy']:.4f}"
              f"  {auc(both['served']):>11s} / {auc(both['aligned'])}")
    rolls = np.array([roll for r in rows for roll in r["rolls"]])
    mesh_abs, disagreement = np.abs(rolls[:, 0]), np.abs(rolls[:, 0] - rolls[:, 1])
    report["roll"] = {"faces": len(rolls), "faces_without_landmarks": sum(r["unsure"] for r in rows),
                      "facemesh_abs_deg_p50_p90_max": np.percentile(mesh_abs, [50, 90, 100]).round(2).tolist(),
                      "facemesh_vs_blazeface_abs_diff_deg_p50_p90_max":
                          np.percentile(disagreement, [50, 90, 100]).round(2).tolist()}
    print(f"roll over {len(rolls)} faces (FaceMesh eyes; {report['roll']['faces_without_landmarks']} faces "
          f"without landmarks), |deg| p50/p90/max: "
          f"{report['roll']['facemesh_abs_deg_p50_p90_max']}; FaceMesh vs BlazeFace keypoints, |diff| p50/p90/max: "
          f"{report['roll']['facemesh_vs_blazeface_abs_diff_deg_p50_p90_max']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()

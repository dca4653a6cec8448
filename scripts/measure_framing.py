"""How the training faces are framed: image side / BlazeFace box side, per source.

Serving crops faces with `FaceSettings.crop_scale` = image side / box side; this script
measures that ratio on training images (which are face crops) so the two framings match.
    python scripts/measure_framing.py ../shared/data/faces/Dataset --per-source 150
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict

import numpy as np

from deepfake_detector.data import scan, source_of
from deepfake_detector.faces import detect_faces
from deepfake_detector.imaging import load_image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir")
    p.add_argument("--per-source", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    train = scan(args.data_dir)["Train"]
    by_source = defaultdict(list)
    for path in train.paths:
        by_source[source_of(path)].append(path)
    rng = random.Random(args.seed)
    report = {}
    for source, paths in sorted(by_source.items()):
        ratios, missed = [], 0
        for path in rng.sample(paths, min(args.per_source, len(paths))):
            rgb = load_image(path).rgb
            faces = detect_faces(rgb)
            if not faces:
                missed += 1
                continue
            ratios.append(min(rgb.shape[:2]) / faces[0].side)
        q = np.percentile(ratios, [10, 50, 90]).round(2).tolist() if ratios else None
        report[source] = {"images": len(ratios) + missed, "no_face": missed, "side_over_box_p10_p50_p90": q}
        print(f"{source:8s} n={len(ratios) + missed:4d} no face={missed:3d} image side / face box: p10, p50, p90 = {q}")
    all_ratios = [r["side_over_box_p10_p50_p90"][1] for r in report.values() if r["side_over_box_p10_p50_p90"]]
    print(json.dumps({"median_of_source_medians": float(np.median(all_ratios))}))


if __name__ == "__main__":
    main()

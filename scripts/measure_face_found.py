"""How often a portrait gets a face: every Validation and Test image, as it is and inside a photo.

    python scripts/measure_face_found.py ../shared/data/faces/Dataset [--json OUT]

The dataset's images are face crops (frontal and three-quarter portraits). Each is run through
face framing as served twice: the file itself ("crop": found when a face is framed, whole or
not), and pasted off-centre at a random size (its side 20-70% of the canvas height) into a
1024x768 canvas of smooth colour blobs with sensor-like noise ("in photo": found when a framed
face lies on the pasted portrait, its centre inside it). Target: >= 99% found. Prints the found
rate per source, split and class, and by the pasted portrait's size, and writes JSON (default
benchmarks/results/face_found.json) with every miss.

Group pictures (--groups N, default 40): N canvases of each size in GROUP_LAYOUTS (1024x768,
1920x1080, 4000x3000) with 12 Test portraits each in a 4 x 3 grid, all of one size (in turn, the
sizes listed for that canvas), each found when a framed face lies on it; printed by canvas and
portrait size, for all portraits and apart for DFDC's (tight crops without forehead or chin,
unlike a head in a real group photo), with the time face framing took per picture.
--groups-only skips the 3,800 portraits.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from deepfake_detector.data import scan, source_of
from deepfake_detector.faces import FaceSettings, frame_faces
from deepfake_detector.imaging import load_image

CANVAS = (1024, 768)  # width, height
PORTRAIT_SIDE = (0.2, 0.7)  # of the canvas height
SIZE_GROUPS = (0.3, 0.45)  # "in photo" rates are also given for portraits under, between and above these
SIZE_LABELS = ("side < 30%", "side 30-45%", "side >= 45%")
TARGET = 0.99


def photo_background(rng: np.random.Generator, size: tuple[int, int] = CANVAS) -> np.ndarray:
    """Smooth random colour blobs (a defocused scene) plus noise, as uint8 H x W x 3."""
    w, h = size
    blobs = rng.uniform(20, 235, (6, 8, 3)).astype(np.float32)
    canvas = cv2.resize(blobs, (w, h), interpolation=cv2.INTER_CUBIC)
    canvas += rng.normal(0, 8, canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def in_photo(rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """`rgb` resized and pasted off-centre into a photo-like canvas, and where it went (x, y, w, h)."""
    w, h = CANVAS
    side = int(rng.uniform(*PORTRAIT_SIDE) * h)
    pw, ph = side, max(1, round(side * rgb.shape[0] / rgb.shape[1]))
    x, y = int(rng.integers(0, w - pw + 1)), int(rng.integers(0, h - ph + 1))
    canvas = photo_background(rng)
    canvas[y:y + ph, x:x + pw] = cv2.resize(rgb, (pw, ph), interpolation=cv2.INTER_AREA)
    return canvas, (x, y, pw, ph)


def found_on(framing, place: tuple[int, int, int, int]) -> bool:
    x, y, w, h = place
    for region in framing.regions:
        if region.face is not None:
            fx, fy, fw, fh = region.face.box
            if x <= fx + fw / 2 <= x + w and y <= fy + fh / 2 <= y + h:
                return True
    return False


# Canvas (width, height) -> portrait sides in its group pictures, px: a face's box is ~0.6 of its
# portrait's side (DFDC's tight crops: ~0.95).
GROUP_LAYOUTS = {(1024, 768): (60, 90, 120, 150), (1920, 1080): (90, 120, 180), (4000, 3000): (180, 240, 360)}


def group_pictures(paths: list[Path], n: int, rng: np.random.Generator, size: tuple[int, int],
                   sides: tuple[int, ...]) -> dict:
    """Found rate of faces in `n` group pictures of 12 same-sized portraits, by portrait size."""
    found, total, seconds = defaultdict(int), defaultdict(int), defaultdict(float)
    cell_w, cell_h = (size[0] - 40) // 4, (size[1] - 40) // 3
    for k in range(n):
        side = sides[k % len(sides)]
        canvas, places = photo_background(rng, size), []
        for i in range(12):
            row, col = divmod(i, 4)
            x = 20 + col * cell_w + int(rng.integers(0, cell_w - side + 1))
            y = 20 + row * cell_h + int(rng.integers(0, cell_h - side + 1))
            path = paths[int(rng.integers(len(paths)))]
            rgb = load_image(path).rgb
            shrink = side <= max(rgb.shape[:2])
            canvas[y:y + side, x:x + side] = cv2.resize(rgb, (side, side),
                                                        interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
            places.append(((x, y, side, side), "dfdc" if source_of(path) == "dfdc" else "heads"))
        start = time.perf_counter()
        framing = frame_faces(canvas, settings=FaceSettings(max_faces=12))
        seconds[side] += time.perf_counter() - start
        for place, kind in places:
            for key in (side, (side, kind)):
                found[key] += found_on(framing, place)
                total[key] += 1
    rate = lambda key: round(found[key] / total[key], 4) if total[key] else None  # noqa: E731
    return {f"{size[0]}x{size[1]}, {side} px": {
                "faces": total[side], "found": rate(side), "found_whole_heads": rate((side, "heads")),
                "found_dfdc_tight_crops": rate((side, "dfdc")),
                "ms_per_picture": round(1000 * seconds[side] / (total[side] / 12), 1)}
            for side in sorted(k for k in total if isinstance(k, int))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--groups", type=int, default=40, help="group pictures of 12 portraits per canvas size (0: none)")
    p.add_argument("--groups-only", action="store_true", help="only the group pictures")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/face_found.json"))
    args = p.parse_args()
    splits = scan(args.data_dir)
    settings = FaceSettings()
    rng = np.random.default_rng(args.seed)
    counts = defaultdict(lambda: {"images": 0, "crop": 0, "in_photo": 0})
    missed = {"crop": [], "in_photo": []}
    start = time.perf_counter()
    for split in () if args.groups_only else ("Validation", "Test"):
        for path, label in zip(splits[split].paths, splits[split].labels):
            rgb = load_image(path).rgb
            crop_found = frame_faces(rgb, settings=settings).kind in ("faces", "face_crop")
            canvas, place = in_photo(rgb, rng)
            photo_found = found_on(frame_faces(canvas, settings=settings), place)
            share = place[2] / CANVAS[1]
            size = SIZE_LABELS[sum(share >= bound for bound in SIZE_GROUPS)]
            for key in ("all", f"source {source_of(path)}", f"{split} {'Fake' if label else 'Real'}", size):
                counts[key]["images"] += 1
                counts[key]["crop"] += crop_found
                counts[key]["in_photo"] += photo_found
            name = f"{split}/{path.parent.name}/{path.name}"
            if not crop_found:
                missed["crop"].append(name)
            if not photo_found:
                missed["in_photo"].append(f"{name} (portrait side {share:.0%} of the canvas height)")
    group = {}
    for size, sides in GROUP_LAYOUTS.items() if args.groups else ():
        group.update(group_pictures(list(splits["Test"].paths), args.groups, rng, size, sides))
    report = {"target": TARGET, "canvas": list(CANVAS), "portrait_side_of_canvas_height": list(PORTRAIT_SIDE),
              "seconds": round(time.perf_counter() - start, 1), "groups": {}, "group_pictures": group,
              "missed": missed}
    print(f"{'group':18s} {'images':>6s}  {'found: crop':>11s}  {'in photo':>8s}")
    sizes = [k for k in SIZE_LABELS if k in counts]
    for key in (["all"] if counts else []) + sorted(k for k in counts if k != "all" and k not in SIZE_LABELS) + sizes:
        c = counts[key]
        rates = {way: round(c[way] / c["images"], 4) for way in ("crop", "in_photo")}
        report["groups"][key] = {"images": c["images"], **{f"found_{w}": r for w, r in rates.items()}}
        print(f"{key:18s} {c['images']:6d}  {rates['crop']:11.2%}  {rates['in_photo']:8.2%}")
    for size, g in group.items():
        share = lambda rate: "none drawn" if rate is None else f"{rate:.1%}"  # noqa: E731
        print(f"group pictures {size} portraits: {g['found']:.1%} of {g['faces']} faces found; whole heads "
              f"{share(g['found_whole_heads'])}, DFDC tight crops {share(g['found_dfdc_tight_crops'])} "
              f"({g['ms_per_picture']:.0f} ms a picture)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"missed: {len(missed['crop'])} crops, {len(missed['in_photo'])} in photos; written to {args.json}")


if __name__ == "__main__":
    main()

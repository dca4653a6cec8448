"""Large JPEGs: how to give the face detectors a small picture while crops come from the full one.

    python benchmarks/bench_decode.py [--quick] [--json OUT]

Crops must be cut from the full-resolution decode, so that decode is paid in any case. The
question is how the detectors get their reduced copy:
  - "one decode + halving" (what serving does): the full decode, halved (2x2 means) while the
    long side stays >= FaceSettings.detection_side, then the detectors' own resize;
  - "two decodes": a second decode of the same file at reduced size (Pillow's `draft`, JPEG DCT
    scaling) for the detectors, next to the full decode for the crops;
  - "one decode, direct resize" (before): each detector resized the full picture itself.
Measured on a 12 MP (4000x3000) and a 1024x768 JPEG with a real face; every path must find it.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

import _common as bench  # first: puts src/ on sys.path

from deepfake_detector.faces import FaceSettings, detect_faces, reduced
from deepfake_detector.imaging import load_image

# name: (width, height, portrait height): a close-up on the camera's full sensor, a web-sized photo
SIZES = {"12MP": (4000, 3000, 2000), "1024x768": (1024, 768, None)}
# detection_side so large that nothing is halved: the detectors resize the full picture (before).
NO_HALVING = FaceSettings(detection_side=10**9)


def draft_decode(data: bytes, min_side: int) -> tuple[np.ndarray, float]:
    """The file decoded at the smallest JPEG scale (1/2, 1/4, 1/8) keeping the long side >= min_side."""
    im = Image.open(io.BytesIO(data))
    full_w = im.width
    ratio = min_side / max(im.size)
    im.draft("RGB", (max(1, round(im.width * ratio)), max(1, round(im.height * ratio))))
    small = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    return small, full_w / small.shape[1]


def faces_via_draft(data: bytes, settings: FaceSettings) -> list:
    small, factor = draft_decode(data, settings.detection_side)
    return [(np.array(f.box) * factor).round().astype(int) for f in detect_faces(small, settings)]


def measure(name: str, data: bytes, runs: int) -> dict:
    settings = FaceSettings()
    rgb = load_image(data).rgb
    found = {"one decode + halving": [f.box for f in detect_faces(rgb, settings)],
             "two decodes": [tuple(b) for b in faces_via_draft(data, settings)],
             "one decode, direct resize": [f.box for f in detect_faces(rgb, NO_HALVING)]}
    missing = [path for path, boxes in found.items() if not boxes]
    if missing:
        raise SystemExit(f"{name}: no face found by {missing}")
    t = lambda fn: bench.latency(bench.time_calls(fn, runs, warmup=1))  # noqa: E731
    stages = {"full decode (load_image)": t(lambda: load_image(data)),
              "draft decode": t(lambda: draft_decode(data, settings.detection_side)),
              "halving": t(lambda: reduced(rgb, settings.detection_side)),
              "detect on full picture (direct resize)": t(lambda: detect_faces(rgb, NO_HALVING)),
              "detect with halving": t(lambda: detect_faces(rgb, settings))}
    draft_small = draft_decode(data, settings.detection_side)[0]
    stages["detect on the draft picture"] = t(lambda: detect_faces(draft_small, settings))
    p50 = {k: v["p50_ms"] for k, v in stages.items()}
    decode = p50["full decode (load_image)"]
    totals = {"one decode + halving": decode + p50["detect with halving"],
              "two decodes": decode + p50["draft decode"] + p50["detect on the draft picture"],
              "one decode, direct resize": decode + p50["detect on full picture (direct resize)"]}
    return {"jpeg_bytes": len(data), "stages": stages, "decode_plus_detect_p50_ms": totals,
            "boxes": {k: [list(map(int, b)) for b in v] for k, v in found.items()},
            "draft_size": list(draft_small.shape[1::-1])}


def main() -> None:
    args = bench.parse_args("decode", __doc__.splitlines()[0], model=False)
    results = {}
    for name, (w, h, portrait) in SIZES.items():
        runs = (3 if args.quick else 15) if w * h > 4e6 else (10 if args.quick else 100)
        results[name] = r = measure(name, bench.photo_jpeg(w, h, portrait_height=portrait), runs)
        rows = [(k, bench.fmt_latency(v)) for k, v in r["stages"].items()]
        rows += [(f"total: {k}", f"p50 {v:8.2f} ms") for k, v in r["decode_plus_detect_p50_ms"].items()]
        bench.print_table(f"{name} JPEG ({r['jpeg_bytes'] / 1e6:.1f} MB; draft decode {r['draft_size']})", rows)
    bench.write_results(args.json, "decode", args.quick, results)


if __name__ == "__main__":
    main()

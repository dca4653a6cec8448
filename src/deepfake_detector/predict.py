"""Command line: `python -m deepfake_detector.predict PATH... [--model DIR]`.

Prints one JSON object per image on stdout (file, label, p_fake, confidence, face_found, notes,
error); a progress bar and one line per unreadable file go to stderr. Exit status 0 when every
image was scored, 1 when some could not be read, 2 when nothing could run (no model, no files).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .data import IMAGE_SUFFIXES
from .errors import DetectorError

# Extensions worth trying when walking folders (explicit file arguments are always tried).
WALK_SUFFIXES = IMAGE_SUFFIXES | {".gif", ".tif", ".tiff"}


def expand(paths: list[str]) -> list[Path]:
    """Files as given, folders walked recursively for image files, in a stable order."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in WALK_SUFFIXES)
        else:
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepfake_detector.predict", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    parser.add_argument("--model", help="bundle folder (default: what the app serves - Hub repo or bundled)")
    parser.add_argument("--no-crop", action="store_true", help="score whole images, no face crop")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr)

    from tqdm import tqdm

    from .inference import Predictor, load_served_predictor

    try:
        predictor = Predictor(args.model) if args.model else load_served_predictor()
    except DetectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = expand(args.paths)
    if not files:
        print("error: no image files found in " + ", ".join(args.paths), file=sys.stderr)
        return 2
    failed = 0
    bar = tqdm(total=len(files), file=sys.stderr, unit="img", disable=args.quiet, mininterval=0.5)
    for pred in predictor.predict_many(files, crop=not args.no_crop, batch_size=args.batch_size):
        if pred.error:
            failed += 1
            tqdm.write(f"{pred.file}: {pred.error}", file=sys.stderr)
        print(json.dumps(pred.to_dict()), flush=True)
        bar.update(1)
    bar.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

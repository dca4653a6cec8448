"""Command line: `deepfake-detect PATH... [--model DIR]` (or `python -m deepfake_detector.predict`).

Prints one JSON object per image or video on stdout (images: kind "image", file, label, p_fake,
confidence, face_found, notes, error, provenance (what the file declares: provenance.py); videos
(.mp4 .webm .mov .avi .mkv): kind "video" and the `VideoPrediction` keys, provenance among them).
A zip archive is opened as the Batch tab opens it: a row per image inside
("archive.zip/member.jpg"), and one with an error for each file it holds that is not scored.
Progress bars and one line per unreadable file go to stderr. Exit status 0 when every file was
scored, 1 when some could not be read, 2 when nothing could run (no model, no files, or no file
readable).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from pathlib import Path

from .errors import DetectorError
from .imaging import IMAGE_SUFFIXES
from .video import VIDEO_SUFFIXES


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def kind_of(path: Path) -> str:
    """How a file is read: "video", "zip" or "image"."""
    return "video" if is_video(path) else "zip" if path.suffix.lower() == ".zip" else "image"


def expand(paths: list[str]) -> list[Path]:
    """Files as given, folders walked recursively for image and video files, in a stable order."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file()
                          and (f.suffix.lower() in IMAGE_SUFFIXES or is_video(f)))
        else:
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepfake-detect", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="image, video or zip files, or folders (searched recursively "
                                                 "for images and videos)")
    parser.add_argument("--model", help="bundle folder (default: what the app serves - Hub repo or bundled)")
    parser.add_argument("--no-crop", action="store_true", help="score whole images, no face crop")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--fps", type=float, default=1.0, help="videos: frames sampled per second (default 1)")
    parser.add_argument("--max-frames", type=int, default=64,
                        help="videos: at most this many frames, spread over the clip (default 64)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr)

    from tqdm import tqdm

    from .archives import read_zip
    from .inference import Predictor
    from .served_model import load_served_predictor
    from .serving import ServingSettings
    from .video import VideoSettings

    try:
        limits = ServingSettings.from_env().input_limits()  # the same environment settings as the app
        predictor = Predictor(args.model, limits=limits) if args.model else load_served_predictor(limits)
        video_settings = VideoSettings(fps=args.fps, max_frames=args.max_frames,
                                       max_seconds=limits.max_video_seconds, max_mb=limits.max_video_mb)
    except DetectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = expand(args.paths)
    if not files:
        print("error: no image or video files found in " + ", ".join(args.paths), file=sys.stderr)
        return 2
    rows = failed = 0
    unit = "file" if any(is_video(f) for f in files) else "img"
    bar = tqdm(total=len(files), file=sys.stderr, unit=unit, disable=args.quiet, mininterval=0.5)

    def images(sources, names=None):
        return ({"kind": "image", **pred.to_dict()} for pred in
                predictor.predict_many(sources, crop=not args.no_crop, batch_size=args.batch_size, names=names))

    def zip_rows(path: Path):
        found = read_zip(path, int(limits.max_upload_mb * 1e6))
        bar.total += len(found.names) + len(found.problems) - 1  # a row each instead of the archive's one
        yield from ({"kind": "image", **predictor.failed(name, problem).to_dict()} for name, problem in found.problems)
        yield from images(found.data, found.names)

    # In the order given: runs of images are batched, videos are scored one by one.
    for kind, group in itertools.groupby(files, key=kind_of):
        if kind == "video":
            results = (_video(predictor, path, video_settings, not args.no_crop, args.quiet) for path in group)
        elif kind == "zip":
            results = itertools.chain.from_iterable(zip_rows(path) for path in group)
        else:
            results = images(list(group))
        for row in results:
            rows += 1
            if row["error"]:
                failed += 1
                tqdm.write(f"{row['file']}: {row['error']}", file=sys.stderr)
            print(json.dumps(row), flush=True)
            bar.update(1)
    bar.close()
    if failed == rows:
        print(f"error: none of the {rows} file(s) could be read", file=sys.stderr)
        return 2
    return 1 if failed else 0


def _video(predictor, path: Path, settings, crop: bool, quiet: bool) -> dict:
    """One video's JSON row (kind "video"), with a per-frame progress bar on stderr."""
    from tqdm import tqdm

    from .video import failed, predict_video

    with tqdm(desc=path.name, file=sys.stderr, unit="frame", leave=False, disable=quiet, position=1,
              mininterval=0.5) as frames:
        def progress(done: int, total: int) -> None:
            frames.total = total
            frames.update(done - frames.n)

        try:
            result = predict_video(predictor, path, settings, crop=crop, progress=progress, name=str(path))
        except DetectorError as exc:
            result = failed(str(path), str(exc), predictor.threshold)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            logging.getLogger(__name__).debug("video failed", exc_info=True)
            result = failed(str(path), f"the video could not be read ({type(exc).__name__})", predictor.threshold)
    return {"kind": "video", **result.to_dict()}


if __name__ == "__main__":
    sys.exit(main())

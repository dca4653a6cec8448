"""Video scoring cost: a 60 s 1280x720 clip with a face, end to end, and where the time goes.

    python benchmarks/bench_video.py [--quick] [--model DIR] [--json OUT]

The clip (25 fps, MPEG-4 Part 2 'mp4v': the encoder OpenCV's wheel can write) is generated in a
temporary folder: a face moving over a textured background. Measured: `predict_video` with the
default settings (1 frame per second -> 60 frames), the target being <= 10 s on 2 CPU cores;
decoding the 60 sampled frames by grabbing through the stream vs seeking to each (why
`video.SEEK_GAP` is what it is); scoring one frame; drawing the timeline.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

import _common as bench  # first: puts src/ on sys.path

import cv2

from deepfake_detector import video
from deepfake_detector.inference import Predictor

WIDTH, HEIGHT, FPS, SECONDS = 1280, 720, 25, 60
TARGET_S = 10.0


def make_clip(path: Path) -> dict:
    """60 s of 720p: a 330x386 portrait (face ~130 px) sweeping left and right over a static texture."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    base = np.stack([90 + 80 * xx / WIDTH, 110 + 60 * yy / HEIGHT, 140 - 40 * xx / WIDTH], axis=-1)
    base = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)[..., ::-1]
    face = bench._portrait().resize((330, 386))
    face = np.asarray(face)[..., ::-1]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    start = time.perf_counter()
    for i in range(FPS * SECONDS):
        frame = base.copy()
        x = int(475 + 400 * np.sin(i / (2 * FPS)))
        y = int(167 + 60 * np.cos(i / (3 * FPS)))
        frame[y:y + face.shape[0], x:x + face.shape[1]] = face
        writer.write(frame)
    writer.release()
    return {"size": f"{WIDTH}x{HEIGHT}", "fps": FPS, "seconds": SECONDS, "codec": "mp4v",
            "mb": round(path.stat().st_size / 1e6, 1), "write_s": round(time.perf_counter() - start, 1)}


def decode_only(path: Path, seek_gap: int) -> float:
    """Seconds to read the default plan's 60 frames, seeking over gaps longer than `seek_gap` frames."""
    saved = video.SEEK_GAP
    video.SEEK_GAP = seek_gap
    try:
        start = time.perf_counter()
        with video._Clip(path, video.VideoSettings()) as clip:
            n = sum(1 for _ in clip.frames(clip.plan(video.VideoSettings())))
        assert n == SECONDS, n
        return time.perf_counter() - start
    finally:
        video.SEEK_GAP = saved


def main() -> None:
    args = bench.parse_args("video", __doc__.splitlines()[0])
    folder = bench.require_bundle(args.model)
    predictor = Predictor(folder)
    runs = 1 if args.quick else 3
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        path = Path(tmp) / "clip.mp4"
        clip_facts = make_clip(path)
        cap = cv2.VideoCapture(str(path))
        cap.set(cv2.CAP_PROP_POS_FRAMES, 300)
        frame = cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB)
        cap.release()
        per_frame = bench.time_calls(lambda: predictor.predict(frame), 5 if args.quick else 30)

        e2e, result = [], None
        for _ in range(runs):
            start = time.perf_counter()
            result = video.predict_video(predictor, path)
            e2e.append(time.perf_counter() - start)
        grab = [decode_only(path, 10 ** 9) for _ in range(runs)]
        seek = [decode_only(path, 0) for _ in range(runs)]
        timeline = bench.time_calls(lambda: video.timeline_image(result, predictor.uncertain_band), runs, warmup=1)

    faces = sum(f.face_found for f in result.frames)
    results = {"model_dir": str(folder), "clip": clip_facts, "frames_sampled": result.frames_sampled,
               "frames_with_face": faces, "end_to_end": bench.latency(np.array(e2e)),
               "target_s": TARGET_S, "target_met": float(np.median(e2e)) <= TARGET_S,
               "decode_60_frames_grab_s": round(float(np.median(grab)), 3),
               "decode_60_frames_seek_s": round(float(np.median(seek)), 3),
               "seek_gap_frames": video.SEEK_GAP,
               "score_one_frame": bench.latency(per_frame), "timeline_plot": bench.latency(timeline),
               "peak_rss_mb": bench.peak_rss_mb()}
    bench.print_table(f"predict_video on a {SECONDS} s {WIDTH}x{HEIGHT} {FPS} fps mp4v clip "
                      f"({clip_facts['mb']} MB), {result.frames_sampled} frames sampled", [
        ("end to end", f"{np.median(e2e):.2f} s median of {runs} (target <= {TARGET_S:.0f} s: "
                       f"{'met' if results['target_met'] else 'NOT met'})"),
        ("  decode 60 frames, grab through", f"{results['decode_60_frames_grab_s']:.2f} s"),
        ("  decode 60 frames, seek to each", f"{results['decode_60_frames_seek_s']:.2f} s"),
        ("  score one 720p frame", bench.fmt_latency(results["score_one_frame"])),
        ("timeline plot", bench.fmt_latency(results["timeline_plot"])),
        ("frames with a face", f"{faces} of {result.frames_sampled}"),
        ("peak RSS", f"{results['peak_rss_mb']:.0f} MB"),
    ])
    bench.write_results(args.json, "video", args.quick, results)


if __name__ == "__main__":
    main()

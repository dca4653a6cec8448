"""Video: clips made here with cv2.VideoWriter (a real face pasted on generated frames), scored end to end.

The `predictor` fixture is a tiny model whose scores mean nothing: these tests check the sampling
(how many frames, at what times), the face following, that the clip score is the stated rule
applied to the frame scores, the UI handler and CLI, and one clear message per bad file.
"""

from __future__ import annotations

import functools
import io
import json
import math
import struct
import subprocess
import sys
import wave

import cv2
import gradio as gr
import matplotlib.cbook
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from deepfake_detector import ui, video
from deepfake_detector.errors import VideoError
from deepfake_detector.inference import FaceResult
from deepfake_detector.video import VideoSettings, main_face, predict_video, timeline_image

W, H, FPS, SECONDS = 480, 360, 10, 8


@functools.lru_cache(maxsize=None)
def hopper(scale: float) -> np.ndarray:
    """Grace Hopper's portrait (512x600; face box about 197 px at scale 1), BGR for OpenCV."""
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        im = Image.open(f).convert("RGB")
    return np.asarray(im.resize((round(512 * scale), round(600 * scale))))[..., ::-1].copy()


def background(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    canvas = np.stack([90 + 80 * xx / w, 110 + 60 * yy / h, 140 - 40 * xx / w], axis=-1)
    return np.clip(canvas + rng.normal(0, 8, canvas.shape), 0, 255).astype(np.uint8)


def write_clip(path, frames, fps: float = FPS, fourcc: str = "mp4v") -> str:
    frames = list(frames)
    h, w = frames[0].shape[:2] if frames else (H, W)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} to {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return str(path)


def face_frames(n: int = FPS * SECONDS, face_from: int = 0, w: int = W, h: int = H):
    """A face drifting right, present from frame `face_from` on."""
    base = background(w, h, seed=1)
    face = hopper(0.55)
    for i in range(n):
        frame = base.copy()
        if i >= face_from:
            x, y = 20 + 2 * i, 20
            frame[y:y + face.shape[0], x:x + face.shape[1]] = face
        yield frame


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    out = {"face": write_clip(folder / "face.mp4", face_frames()),
           "second_half": write_clip(folder / "second_half.mp4", face_frames(face_from=FPS * SECONDS // 2))}
    noisy = [np.random.default_rng(i).integers(0, 255, (96, 128, 3), dtype=np.uint8) for i in range(40)]
    data = open(write_clip(folder / "noisy.avi", noisy, fourcc="MJPG"), "rb").read()
    (folder / "cut_short.avi").write_bytes(data[:int(len(data) * 0.6)])  # decodes partly
    return out | {"folder": folder, "cut_short": str(folder / "cut_short.avi")}


def top_rule(scores: list[float], fraction: float = 0.25) -> float:
    k = max(1, math.ceil(fraction * len(scores)))
    return float(np.mean(sorted(scores, reverse=True)[:k]))


# -- sampling, timeline, rule ------------------------------------------------------------------------
def test_clip_timeline_and_verdict_follow_the_rule(predictor, clips):
    calls = []
    result = predict_video(predictor, clips["face"], progress=lambda done, total: calls.append((done, total)))
    d = result.to_dict()
    json.dumps(d)  # serialisable as the API and CLI send it
    assert {"file", "duration_s", "fps", "frames_sampled", "frames", "p_fake", "label", "verdict", "confidence",
            "threshold", "rule", "notes", "error"} <= set(d)
    assert d["duration_s"] == pytest.approx(SECONDS) and d["fps"] == pytest.approx(FPS)
    # 1 frame per second, each in the middle of its second.
    assert d["frames_sampled"] == len(d["frames"]) == SECONDS
    assert [f["time_s"] for f in d["frames"]] == pytest.approx([i + 0.5 for i in range(SECONDS)])
    assert all(f["face_found"] and len(f["faces"]) == 1 for f in d["frames"])
    for f in d["frames"]:  # the pasted face, drifting 2 px a frame
        x, y, w, h = f["box"]
        assert abs(x + w / 2 - (20 + 2 * f["frame"] + 0.55 * 265)) < 30 and 70 < w < 150
    scores = [f["p_fake"] for f in d["frames"]]
    assert d["p_fake"] == pytest.approx(top_rule(scores), abs=1e-6)
    assert "the 2 highest of 8 frames with a face" in d["rule"]
    assert d["label"] == ("fake" if d["p_fake"] >= predictor.threshold else "real")
    assert d["verdict"] == predictor.verdict_of(d["p_fake"])
    assert calls[-1] == (SECONDS, SECONDS) and [c[0] for c in calls] == sorted(c[0] for c in calls)
    # Thumbnails: the best frames, best first, small.
    assert 1 <= len(result.thumbnails) <= video.TOP_K
    best = sorted(scores, reverse=True)[:len(result.thumbnails)]
    assert [float(c.split("P(fake) ")[1]) for _, c in result.thumbnails] == pytest.approx(best, abs=0.006)
    assert all(max(t.shape[:2]) <= video.THUMB_SIDE for t, _ in result.thumbnails)
    plot = timeline_image(result, (0.4, 0.6))
    assert plot.ndim == 3 and plot.shape[2] == 3 and plot.dtype == np.uint8


def test_face_only_in_second_half(predictor, clips):
    d = predict_video(predictor, clips["second_half"]).to_dict()
    found = [f["face_found"] for f in d["frames"]]
    assert found == [False] * 4 + [True] * 4
    assert all(f["box"] is None and f["faces"] == [] for f in d["frames"][:4])
    # Only frames with a face count: the top quarter of 4 is the single best one.
    assert d["p_fake"] == pytest.approx(max(f["p_fake"] for f in d["frames"][4:]), abs=1e-6)
    assert "1 highest of 4 frames with a face" in d["rule"]
    assert any("a face was found in 4 of 8" in n for n in d["notes"])


def test_sparse_samples_seek_to_the_same_frames(predictor, clips, monkeypatch):
    grabbed = predict_video(predictor, clips["face"], VideoSettings(max_frames=3)).to_dict()
    monkeypatch.setattr(video, "SEEK_GAP", 0)  # every gap is jumped with a seek
    sought = predict_video(predictor, clips["face"], VideoSettings(max_frames=3)).to_dict()
    assert [f["frame"] for f in grabbed["frames"]] == [13, 40, 66]
    assert sought["frames"] == grabbed["frames"]


def face(box, p=0.5):
    return FaceResult(1, list(box), list(box), p, "real", "real", 0.5)


def test_frames_search_faces_up_to_the_video_tile_side(predictor, tmp_path):
    """A 1080p frame's face search stops at VideoSettings.tiles_max_side (half the frame): faces of
    ~50 px are left to a finer search, which the same setting turns on."""
    frame = background(1920, 1080, seed=3)
    face = hopper(0.25)  # face box ~50 px
    for i, x in enumerate(range(100, 1800, 220)):
        y = 300 + 150 * (i % 2)
        frame[y:y + face.shape[0], x:x + face.shape[1]] = face
    clip = write_clip(tmp_path / "group.mp4", [frame] * 4, fps=2)

    def faces_found(settings: VideoSettings) -> list[int]:
        return [len(f["faces"]) for f in predict_video(predictor, clip, settings).to_dict()["frames"]]

    coarse, fine = faces_found(VideoSettings(max_frames=2)), faces_found(VideoSettings(max_frames=2, tiles_max_side=2048))
    assert len(coarse) == len(fine) == 2 and all(c < f for c, f in zip(coarse, fine)), (coarse, fine)


def test_main_face_is_followed_not_the_largest():
    big, small = face((0, 0, 100, 100)), face((400, 0, 60, 60))
    assert main_face([big, small], None) is big  # first frame: the largest
    # Later, the other face has grown larger: the one near the previous main face is still followed.
    near, grown = face((20, 10, 80, 80)), face((380, 0, 120, 120))
    assert main_face([grown, near], [0, 0, 100, 100]) is near
    assert main_face([grown], [0, 0, 100, 100]) is grown  # the followed face left: the largest
    whole = FaceResult(1, [0, 0, 640, 360], None, 0.3, "real", "real", 0.7)  # no face: the whole frame
    assert main_face([whole], [0, 0, 100, 100]) is None


def test_truncated_video_scores_what_decodes(predictor, clips):
    d = predict_video(predictor, clips["cut_short"], VideoSettings(fps=10)).to_dict()
    assert 0 < d["frames_sampled"] < 40
    assert any("stops decoding" in n for n in d["notes"])


# -- bad input: one clear message each -------------------------------------------------------------
def _mp4_box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _audio_only_mp4() -> bytes:
    hdlr = _mp4_box(b"hdlr", b"\0" * 8 + b"soun" + b"\0" * 12 + b"SoundHandler\0")
    return (_mp4_box(b"ftyp", b"isom\0\0\2\0isommp41") + _mp4_box(b"moov", _mp4_box(b"trak", _mp4_box(b"mdia", hdlr)))
            + _mp4_box(b"mdat", bytes(64)))


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(bytes(1600))
    return buf.getvalue()


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(buf, "PNG")
    return buf.getvalue()


def _bad_file(kind: str, folder) -> str:
    path = folder / f"{kind}.mp4"
    if kind == "truncated":
        data = open(write_clip(folder / "whole.mp4", face_frames(20)), "rb").read()
        path.write_bytes(data[:len(data) // 2])  # OpenCV writes the MP4 index last: it is cut off
    elif kind == "random_bytes":
        path.write_bytes(b"\0\1" + np.random.default_rng(0).bytes(5000))
    elif kind == "renamed_png":
        path.write_bytes(_png())
    elif kind == "one_pixel":
        path = folder / "one_pixel.avi"
        write_clip(path, [np.full((1, 1, 3), 128, np.uint8)] * 5, fourcc="MJPG")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "zero_frames_mp4":
        write_clip(path, [])
    elif kind == "zero_frames_avi":
        path = folder / "zero.avi"
        write_clip(path, [], fourcc="MJPG")
    elif kind == "audio_only_mp4":
        path.write_bytes(_audio_only_mp4())
    elif kind == "wav_renamed":
        path.write_bytes(_wav())
    elif kind == "unknown_codec":  # an AVI whose FourCC names no codec FFmpeg has
        path = folder / "unknown_codec.avi"
        mjpg = write_clip(folder / "mjpg.avi", [np.full((48, 64, 3), 99, np.uint8)] * 5, fourcc="MJPG")
        path.write_bytes(open(mjpg, "rb").read().replace(b"MJPG", b"ZZZZ"))
    elif kind == "text":
        path.write_bytes(b"hello, this is not a video\n" * 20)
    return str(path)


@pytest.mark.parametrize("kind,message", [
    ("truncated", "truncated or incomplete"),
    ("random_bytes", "not a recognised video"),
    ("renamed_png", "this is a PNG image, not a video"),
    ("one_pixel", "only 1x1 pixels"),
    ("empty", "the file is empty"),
    ("zero_frames_mp4", "has no frames"),
    ("zero_frames_avi", "has no frames"),
    ("audio_only_mp4", "only an audio track"),
    ("wav_renamed", "only an audio track"),
    ("text", "text file, not a video"),
    ("unknown_codec", "its codec (ZZZZ) is not supported"),
])
def test_bad_video_one_clear_message(predictor, tmp_path, kind, message):
    with pytest.raises(VideoError) as err:
        predict_video(predictor, _bad_file(kind, tmp_path))
    assert message in str(err.value)


def test_frames_over_the_megapixel_limit_are_refused_before_decoding(bundle_dir, clips, monkeypatch):
    from dataclasses import replace

    from deepfake_detector.imaging import DEFAULT_LIMITS
    from deepfake_detector.inference import Predictor

    strict = Predictor(bundle_dir, limits=replace(DEFAULT_LIMITS, max_megapixels=0.1))  # clips: 480x360
    decoded = []
    real_read = cv2.VideoCapture.read
    monkeypatch.setattr(cv2.VideoCapture, "read", lambda self, *a: decoded.append(1) or real_read(self, *a))
    with pytest.raises(VideoError, match=r"frames are 480x360 pixels \(0 megapixels\); the limit is 0.1"):
        predict_video(strict, clips["face"])
    assert not decoded


def test_slow_clip_stops_at_its_time_limit_and_says_so(predictor, clips, monkeypatch):
    """Decoding is cut off at VideoSettings.time_limit_s; the frames scored by then decide. (A clock
    that moves 1 s per look stands in for a clip whose every seek decodes from its one keyframe.)"""
    clock = iter(range(10**6))
    monkeypatch.setattr(video.time, "monotonic", lambda: float(next(clock)))
    d = predict_video(predictor, clips["face"], VideoSettings(fps=4, time_limit_s=6)).to_dict()
    assert 1 <= d["frames_sampled"] < 32
    assert any("reading the video was stopped after 6 s" in n and f"{d['frames_sampled']} of 32 planned" in n
               for n in d["notes"]), d["notes"]
    with pytest.raises(VideoError, match="no frame of the video could be decoded within 0 s"):
        predict_video(predictor, clips["face"], VideoSettings(time_limit_s=0))


def test_limits_and_settings_are_enforced(predictor, clips, tmp_path):
    with pytest.raises(VideoError, match=r"8 s long; the limit is 5 s"):
        predict_video(predictor, clips["face"], VideoSettings(max_seconds=5))
    with pytest.raises(VideoError, match=r"MB; the limit is 0 MB"):
        predict_video(predictor, clips["face"], VideoSettings(max_mb=0.0001))
    with pytest.raises(VideoError, match="not found"):
        predict_video(predictor, tmp_path / "nope.mp4")
    for bad in ({"fps": 0}, {"fps": 1e-9}, {"fps": 1000}, {"fps": float("inf")}, {"max_frames": 0},
                {"max_frames": 2.5}):
        with pytest.raises(VideoError):
            VideoSettings(**bad)
    with pytest.raises(VideoError, match=r"frames per second sampled must be from 0.05 to 30 \(got 1e-09\)"):
        VideoSettings(fps=1e-9)
    assert VideoSettings(max_frames=64.0).max_frames == 64


def test_video_fields_refuse_bad_api_values_in_one_line_naming_the_field():
    fps = ui.CheckedNumber(value=1.0, minimum=0.05, maximum=30, label="Frames per second sampled")
    assert fps.get_block_name() == "number"  # the browser draws it with Gradio's number field
    assert fps.preprocess(2.5) == 2.5 and fps.preprocess(None) is None
    for value, reason in ((0, "value 0 is less than minimum value 0.05"),
                          (1000, "value 1000 is greater than maximum value 30"),
                          ("abc", "expected a number, got 'abc'")):
        with pytest.raises(gr.Error) as info:
            fps.preprocess(value)
        assert info.value.message == f"Frames per second sampled: {reason}"
        assert info.value.print_exception is False  # Gradio logs no traceback for it


# -- UI handler and CLI ------------------------------------------------------------------------------
def test_ui_handler(predictor, clips, tmp_path):
    details, markdown, timeline, gallery = ui.detect_video(predictor, clips["face"], True, 2.0, 5)
    assert details["frames_sampled"] == 5 and details["file"] == "face.mp4"
    assert details["rule"] in markdown and ("Fake" in markdown or "Real" in markdown or "Uncertain" in markdown)
    assert timeline.ndim == 3 and timeline.shape[2] == 3
    assert 1 <= len(gallery) <= 4 and all(isinstance(img, np.ndarray) and "P(fake)" in cap for img, cap in gallery)
    # Through the wrapper the app uses: a bad video or none is a gr.Error with the message.
    handler = ui._user_errors(functools.partial(ui.detect_video, predictor))
    with pytest.raises(gr.Error, match="PNG image"):
        handler(_bad_file("renamed_png", tmp_path))
    with pytest.raises(gr.Error, match="no video uploaded"):
        handler(None)
    with pytest.raises(gr.Error, match="max frames"):
        handler(clips["face"], True, 1.0, 0)


def test_cli_scores_videos(bundle_dir, clips):
    folder = clips["folder"]
    result = subprocess.run([sys.executable, "-m", "deepfake_detector.predict", str(folder / "face.mp4"),
                             str(folder / "noisy.avi"), _bad_file("renamed_png", folder), "--model", str(bundle_dir),
                             "--max-frames", "4"], capture_output=True, text=True, timeout=120, cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1, result.stderr[-2000:]  # one file could not be read
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["kind"] for r in rows] == ["video"] * 3
    assert [r["frames_sampled"] for r in rows] == [4, 4, 0]
    assert rows[0]["frames"][0]["face_found"] and rows[0]["error"] is None
    assert "PNG image" in rows[2]["error"] and "PNG image" in result.stderr
    assert "frame" in result.stderr and "Traceback" not in result.stderr

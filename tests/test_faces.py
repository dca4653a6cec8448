"""BlazeFace detection and framing on pictures whose faces are where the test put them."""

from __future__ import annotations

import matplotlib.cbook
import numpy as np
import pytest
from PIL import Image

from deepfake_detector.faces import (SHORT_RANGE, FaceSettings, anchors, decode, detect_faces, frame_faces,
                                     reduced)

# grace_hopper.jpg (512x600): her face box as the short-range detector reports it at full size.
HOPPER_FACE = (167, 143, 197, 197)


def hopper(scale: float = 1.0, mirror: bool = False) -> Image.Image:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        im = Image.open(f).convert("RGB")
    if mirror:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return im.resize((round(512 * scale), round(600 * scale)))


def expected_box(x: int, y: int, scale: float, mirror: bool = False) -> tuple[float, float, float]:
    fx, fy, fw, _ = HOPPER_FACE
    if mirror:
        fx = 512 - fx - fw
    return x + (fx + fw / 2) * scale, y + (fy + fw / 2) * scale, fw * scale


def test_anchor_grid_matches_the_model_outputs():
    a = anchors(SHORT_RANGE)
    assert a.shape == (896, 2)  # 16x16x2 + 8x8x6, the short-range model's output count
    assert a[0] == pytest.approx([0.5 / 16, 0.5 / 16]) and a[-1] == pytest.approx([7.5 / 8, 7.5 / 8])


def test_decode_places_a_box_on_its_anchor():
    raw_boxes = np.zeros((896, 16), np.float32)
    raw_scores = np.full((896, 1), -10.0, np.float32)
    k = 16 * 16 * 2 + 6 * (8 * 3 + 5)  # stride-16 cell at column 5, row 3
    raw_scores[k] = 10.0
    raw_boxes[k, :4] = [12.8, -6.4, 32.0, 64.0]  # offsets and size in input pixels (128)
    boxes, scores, keypoints = decode(raw_boxes, raw_scores, SHORT_RANGE, 0.5)
    cx, cy = 5.5 / 8 + 0.1, 3.5 / 8 - 0.05
    assert scores == pytest.approx([1.0], abs=1e-4)
    assert boxes[0] == pytest.approx([cx - 0.125, cy - 0.25, cx + 0.125, cy + 0.25], abs=1e-5)
    assert keypoints[0, 0] == pytest.approx([5.5 / 8, 3.5 / 8], abs=1e-5)


@pytest.mark.parametrize("scale,mirror", [(1.0, False), (0.7, True), (1.3, False)])
def test_portrait_face_found_where_it_is(scale, mirror):
    canvas = Image.new("RGB", (1024, 768), (110, 130, 150))
    canvas.paste(hopper(scale, mirror), (60, 40))
    faces = detect_faces(np.asarray(canvas))
    assert len(faces) == 1
    cx, cy, side = expected_box(60, 40, scale, mirror)
    x, y, w, h = faces[0].box
    assert abs(x + w / 2 - cx) < 0.2 * side and abs(y + h / 2 - cy) < 0.2 * side
    assert 0.75 * side < w < 1.3 * side


def test_group_picture_every_face_boxed():
    """Three people side by side: each gets its own box, largest first, crops framed alike."""
    canvas = Image.new("RGB", (1280, 720), (200, 200, 190))
    placed = [(40, 60, 0.9, False), (500, 110, 0.75, True), (880, 160, 0.6, False)]
    for x, y, scale, mirror in placed:
        canvas.paste(hopper(scale, mirror), (x, y))
    framing = frame_faces(np.asarray(canvas))
    assert framing.kind == "faces" and len(framing.regions) == 3
    sides = [r.face.side for r in framing.regions]
    assert sides == sorted(sides, reverse=True)
    for region, (x, y, scale, mirror) in zip(framing.regions, placed):
        cx, cy, side = expected_box(x, y, scale, mirror)
        fx, fy, fw, fh = region.face.box
        assert abs(fx + fw / 2 - cx) < 0.2 * side and abs(fy + fh / 2 - cy) < 0.2 * side
        bx, by, bw, bh = region.box
        assert bw == bh == pytest.approx(fw * FaceSettings().crop_scale, rel=0.05)


def test_face_cap_and_skipped_note():
    canvas = Image.new("RGB", (1280, 720), (200, 200, 190))
    for x in (40, 500, 880):
        canvas.paste(hopper(0.6), (x, 100))
    framing = frame_faces(np.asarray(canvas), settings=FaceSettings(max_faces=2))
    assert len(framing.regions) == 2 and framing.skipped_over_cap == 1
    assert any("1 more face(s) not scored" in n for n in framing.notes())


def test_tight_face_crop_is_scored_whole():
    x, y, w, _ = HOPPER_FACE
    crop = np.asarray(hopper())[y - 20:y + w + 20, x - 20:x + w + 20]
    framing = frame_faces(crop)
    assert framing.kind == "face_crop" and framing.regions[0].box == (0, 0, crop.shape[1], crop.shape[0])
    assert framing.notes() == ["the image is a face crop: scored it whole"]


def test_no_face_and_crop_off():
    noise = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    assert frame_faces(noise).kind == "no_face"
    assert frame_faces(np.asarray(hopper()), enabled=False).kind == "whole"


def test_reduced_copy_is_exact_two_by_two_means():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (1537, 2049, 3), dtype=np.uint8)  # odd sides: last row/column dropped
    small, factor = reduced(rgb, 384)
    assert factor == 4 and small.shape == (384, 512, 3)
    block = rgb[8:12, 20:24].reshape(-1, 3).astype(float).mean(axis=0)  # reduced pixel (2, 5)
    assert small[2, 5] == pytest.approx(block, abs=1)
    assert reduced(rgb[:700, :700], 384)[1] == 1  # halving once would go below 384


def test_large_photo_boxes_match_the_unreduced_detection_and_crops_are_full_size():
    """A 12 MP photo: detection on the halved copy finds the faces the full picture gives, and the
    scored crops are cut from the full-resolution pixels."""
    canvas = Image.new("RGB", (4000, 3000), (120, 125, 130))
    placed = [(300, 500, 3.5, False), (2500, 900, 2.2, True)]
    for x, y, scale, mirror in placed:
        canvas.paste(hopper(scale, mirror), (x, y))
    rgb = np.asarray(canvas)
    halved = detect_faces(rgb)
    direct = detect_faces(rgb, FaceSettings(detection_side=10**9))  # nothing halved: the old path
    assert len(halved) == len(direct) == 2
    for a, b, (x, y, scale, mirror) in zip(halved, direct, placed):
        assert np.abs(a.corners - b.corners).max() < 0.03 * b.side
        assert np.abs(a.keypoints - b.keypoints).max() < 0.03 * b.side
        cx, cy, side = expected_box(x, y, scale, mirror)
        assert abs(a.box[0] + a.box[2] / 2 - cx) < 0.2 * side and 0.75 * side < a.box[2] < 1.3 * side
    framing = frame_faces(rgb)
    assert framing.kind == "faces" and len(framing.regions) == 2
    for region in framing.regions:
        x, y, s, _ = region.box
        assert s > 700  # full-size pixels: larger than the whole reduced copy the detectors saw (500x375)
        assert np.shares_memory(region.rgb, rgb) and np.array_equal(region.rgb, rgb[y:y + s, x:x + s])

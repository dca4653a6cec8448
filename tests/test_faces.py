"""BlazeFace detection and framing on pictures whose faces are where the test put them."""

from __future__ import annotations

import cv2
import matplotlib.cbook
import numpy as np
import pytest
import skimage.data
from PIL import Image

from deepfake_detector.faces import (SHORT_RANGE, FaceSettings, anchors, decode, detect_faces, frame_faces,
                                     reduced)

# Public-domain portraits that ship in installed packages, and each face's box as the short-range
# detector reports it at full size: matplotlib's grace_hopper.jpg (512x600), skimage's astronaut
# (Eileen Collins, NASA; 512x512).
HOPPER_FACE = (167, 143, 197, 197)
ASTRONAUT_FACE = (178, 80, 94, 94)
PORTRAITS = {"hopper": HOPPER_FACE, "astronaut": ASTRONAUT_FACE}


def portrait(name: str = "hopper") -> Image.Image:
    if name == "astronaut":
        return Image.fromarray(skimage.data.astronaut())
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return Image.open(f).convert("RGB")


def hopper(scale: float = 1.0, mirror: bool = False, name: str = "hopper") -> Image.Image:
    im = portrait(name)
    if mirror:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return im.resize((round(im.width * scale), round(im.height * scale)))


def expected_box(x: int, y: int, scale: float, mirror: bool = False,
                 name: str = "hopper") -> tuple[float, float, float]:
    """Centre (x, y) and side of the face of portrait `name` pasted at (x, y), scaled and mirrored so."""
    fx, fy, fw, _ = PORTRAITS[name]
    if mirror:
        fx = portrait(name).width - fx - fw
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


def test_face_crop_cut_inside_the_face_is_found_with_a_margin():
    """DFDC-style crops cut through forehead and chin: the detectors need the margin retry."""
    x, y, w, _ = HOPPER_FACE
    crop = np.ascontiguousarray(np.asarray(hopper())[y + 40:y + w - 40, x + 20:x + w - 20])  # 157 x 117
    assert frame_faces(crop, settings=FaceSettings(tight_crop_margin=0)).kind == "no_face"
    framing = frame_faces(crop)
    assert framing.kind == "face_crop" and framing.notes() == ["the image is a face crop: scored it whole"]
    fx, fy, fw, fh = framing.regions[0].face.box
    assert fx >= 0 and fy >= 0 and fx + fw <= crop.shape[1] and fy + fh <= crop.shape[0]  # cut to the image
    assert fw > 0.8 * crop.shape[1]


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
    strip, factor = reduced(np.zeros((16, 20000, 3), np.uint8), 384)  # halving stops before it is empty
    assert strip.shape == (1, 1250, 3) and factor == 16


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


TWELVE_MP_GROUP = [("hopper", 200, 300, 0.55, False), ("astronaut", 1100, 200, 1.2, True),
                   ("hopper", 2300, 400, 0.6, True), ("astronaut", 3100, 250, 1.1, False),
                   ("astronaut", 300, 1700, 1.15, False), ("hopper", 1400, 1800, 0.58, False),
                   ("hopper", 2500, 1900, 0.55, True), ("astronaut", 3200, 1800, 1.2, True)]

# Pictures of several people: (canvas width, height), then (portrait, x, y, scale, mirrored) per person.
# The smallest faces are ~8% of the long side: the full-range model (192 px input) misses faces
# under ~6% (about 11 px in its input), and boxes them less steadily just above that.
GROUPS = {
    "three, mixed sizes": ((1600, 1000), [("hopper", 60, 120, 0.8, False), ("astronaut", 520, 80, 1.2, False),
                                          ("hopper", 1250, 500, 0.45, True)]),
    "small faces in a wide shot": ((1280, 720), [("astronaut", 20, 150, 1.05, False),
                                                 ("hopper", 600, 380, 0.5, True), ("hopper", 900, 100, 0.55, False)]),
    "large photo, big faces": ((2400, 1600), [("astronaut", 100, 200, 2.0, True), ("hopper", 1300, 300, 1.5, False)]),
    # Faces of 60-75 px in a 1024x768 photo: the whole-picture pass finds none, tiles find them all.
    "a group of eight small faces": ((1024, 768), [
        ("hopper", 40, 60, 0.35, False), ("astronaut", 230, 40, 0.75, False), ("hopper", 560, 80, 0.32, True),
        ("astronaut", 700, 20, 0.7, True), ("astronaut", 30, 400, 0.72, True), ("hopper", 330, 430, 0.36, False),
        ("astronaut", 520, 380, 0.8, False), ("hopper", 820, 450, 0.33, True)]),
    # Faces of ~110 px in a 12 MP photo: 27 px in the 1000-px copy the tiles used to stop at.
    "a 12 MP group photo": ((4000, 3000), TWELVE_MP_GROUP),
}


@pytest.mark.parametrize("layout", GROUPS)
def test_every_face_of_a_group_picture_is_boxed_where_it_is(layout):
    size, people = GROUPS[layout]
    canvas = Image.new("RGB", size, (150, 160, 155))
    for name, x, y, scale, mirror in people:
        canvas.paste(hopper(scale, mirror, name), (x, y))
    faces = detect_faces(np.asarray(canvas))
    assert len(faces) == len(people)
    for name, x, y, scale, mirror in people:
        cx, cy, side = expected_box(x, y, scale, mirror, name)
        on_it = [f for f in faces if abs(f.box[0] + f.box[2] / 2 - cx) < 0.2 * side
                 and abs(f.box[1] + f.box[3] / 2 - cy) < 0.2 * side]
        assert len(on_it) == 1, f"{name} at ({x}, {y}) x{scale}: {[f.box for f in faces]}"
        assert 0.75 * side < on_it[0].box[2] < 1.3 * side


WITH_MESH = FaceSettings(landmarks=True)


def astronaut_face():
    rgb = skimage.data.astronaut()
    return rgb, frame_faces(rgb, settings=WITH_MESH).regions[0].face


def test_facemesh_landmarks_sit_on_the_face():
    rgb, face = astronaut_face()
    assert face.landmarks.shape == (468, 2)
    x, y, w, h = face.box
    # Eye centres (FaceMesh's eye contours) within a few pixels of BlazeFace's eye keypoints...
    for mesh_eye, detector_eye in zip(face.eyes, face.keypoints[:2]):
        assert np.linalg.norm(mesh_eye - detector_eye) < 0.06 * w  # 5.6 px on this 94 px face
    # ...and on the dark irises, not the skin around them.
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(float)
    skin = gray[y + h // 2 - 2:y + h // 2 + 3, x + w // 2 - 2:x + w // 2 + 3].mean()
    for ex, ey in np.round(face.eyes).astype(int):
        assert gray[ey - 1:ey + 2, ex - 1:ex + 2].mean() < 0.5 * skin
    marks = face.named_landmarks()
    (lx, ly), (rx, ry) = marks["eyes"]
    nose, mouth = marks["nose_tip"], marks["mouth"]
    assert lx < nose[0] < rx and max(ly, ry) < nose[1] < mouth[1] < y + h
    assert np.linalg.norm(np.array(mouth) - face.keypoints[3]) < 0.06 * w
    assert face.roll_degrees == pytest.approx(3.9, abs=1.0)  # her head leans slightly (eyes: 41.7 px apart, 2.8 down)


@pytest.mark.parametrize("turn", [20, -20])
def test_landmarks_follow_a_turned_face(turn):
    """Turning the picture about the face turns the landmarks with it and changes the roll by as much."""
    rgb, face = astronaut_face()
    x, y, w, h = face.box
    turning = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), turn, 1.0)  # counter-clockwise as shown
    turned = cv2.warpAffine(rgb, turning, rgb.shape[1::-1], borderMode=cv2.BORDER_REFLECT_101)
    moved = frame_faces(turned, settings=WITH_MESH).regions[0].face
    assert moved.roll_degrees == pytest.approx(face.roll_degrees - turn, abs=2.0)
    expected = face.landmarks @ turning[:, :2].T + turning[:, 2]
    assert np.median(np.linalg.norm(moved.landmarks - expected, axis=1)) < 1.5


def test_landmarks_on_a_large_photo_match_the_small_one():
    """A 3072 px face photo is halved before FaceMesh sees it: the points land where they do at 512 px."""
    rgb, face = astronaut_face()
    big = np.asarray(Image.fromarray(rgb).resize((3072, 3072), Image.Resampling.BICUBIC))
    large = frame_faces(big, settings=WITH_MESH).regions[0].face
    assert np.median(np.linalg.norm(large.landmarks / 6 - face.landmarks, axis=1)) < 1.0


def test_served_without_facemesh_the_detector_keypoints_give_the_same_fields():
    rgb = skimage.data.astronaut()
    face = frame_faces(rgb).regions[0].face  # serving's default: FaceMesh off
    assert face.landmarks is None
    assert np.array_equal(face.eyes[0], face.keypoints[0]) and np.array_equal(face.eyes[1], face.keypoints[1])
    assert face.named_landmarks()["nose_tip"] == pytest.approx(face.keypoints[2].tolist(), abs=0.05)
    # BlazeFace's right eye keypoint sits below her eye (see the FaceMesh test): the free roll overstates the lean.
    assert face.roll_degrees == pytest.approx(9.8, abs=1.0)


def test_a_picture_sized_box_less_sure_than_a_face_in_it_is_not_a_face_crop(monkeypatch):
    from deepfake_detector import faces

    rgb = np.asarray(hopper(0.5).resize((1024, 768)))
    false_box = faces.Face((0, 0, 700, 700), 0.55, np.zeros((6, 2)))
    real = faces.Face((300, 200, 150, 150), 0.94, np.zeros((6, 2)))
    monkeypatch.setattr(faces, "detect_faces", lambda *_: [false_box, real])
    framing = faces.frame_faces(rgb)
    assert framing.kind == "faces" and [r.face for r in framing.regions] == [real]
    assert framing.skipped_small == 0 and not any("small" in n for n in framing.notes())
    # A confident close-up subject is never set aside: a face crop when surest, else framed with the rest.
    subject = faces.Face((0, 0, 700, 700), 0.97, np.zeros((6, 2)))
    monkeypatch.setattr(faces, "detect_faces", lambda *_: [subject, real])
    assert faces.frame_faces(rgb).kind == "face_crop"
    subject = faces.Face((0, 0, 700, 700), 0.85, np.zeros((6, 2)))
    monkeypatch.setattr(faces, "detect_faces", lambda *_: [subject, real])
    framing = faces.frame_faces(rgb)
    assert framing.kind == "faces" and [r.face for r in framing.regions] == [real, subject]


def test_faces_found_in_tiles_are_not_swallowed_by_an_unsure_picture_sized_box(monkeypatch):
    """...and the box, holding faces, is no face either."""
    from deepfake_detector import faces

    size, people = GROUPS["a group of eight small faces"]
    canvas = Image.new("RGB", size, (150, 160, 155))
    for name, x, y, scale, mirror in people:
        canvas.paste(hopper(scale, mirror, name), (x, y))
    false_box = faces.Face((0, 0, 700, 700), 0.55, np.zeros((6, 2)))
    real_detect = faces._detect
    monkeypatch.setattr(faces, "_detect", lambda *args: [false_box] + real_detect(*args))
    found = faces.detect_faces(np.asarray(canvas))
    assert false_box not in found and len(found) == len(people)


def test_an_unsure_box_holding_a_much_smaller_face_is_not_a_face(monkeypatch):
    """A false box on the scene (0.5-0.6, not picture-sized) around a small face found in tiles: the
    face is kept and the box dropped; a sure face still swallows smaller boxes inside it."""
    from deepfake_detector import faces

    size, people = GROUPS["a 12 MP group photo"]
    canvas = Image.new("RGB", size, (150, 160, 155))
    for name, x, y, scale, mirror in people:
        canvas.paste(hopper(scale, mirror, name), (x, y))
    false_box = faces.Face((0, 100, 700, 700), 0.55, np.zeros((6, 2)))  # holds the first face (~110 px)
    real_detect = faces._detect
    monkeypatch.setattr(faces, "_detect", lambda *args: [false_box] + real_detect(*args))
    found = faces.detect_faces(np.asarray(canvas))
    assert false_box not in found and len(found) == len(people)
    cx, cy, side = expected_box(*people[0][1:4])
    assert any(abs(f.box[0] + f.box[2] / 2 - cx) < 0.2 * side for f in found)

    sure = faces.Face((0, 0, 400, 400), 0.9, np.zeros((6, 2)))
    inner = faces.Face((150, 150, 100, 100), 0.95, np.zeros((6, 2)))
    assert faces._merge([sure], [inner], 0.3, sure_score=0.75) == [sure]
    unsure = faces.Face((0, 0, 400, 400), 0.6, np.zeros((6, 2)))
    assert faces._merge([unsure], [inner], 0.3, sure_score=0.75) == [unsure, inner]
    blank = np.full((400, 400, 3), 128, np.uint8)
    assert faces._not_holding_faces(blank, [unsure, inner], FaceSettings()) == [inner]
    # Unless FaceMesh sees a face in the large box: then it stays (the small one may be part of it).
    portrait = np.asarray(hopper().resize((400, 469)))[:400]
    real_face = faces.Face((130, 112, 154, 154), 0.6, np.array([[176, 174], [238, 174], [207, 200], [207, 230],
                                                                [140, 180], [275, 180]], float))
    eye = faces.Face((155, 150, 45, 45), 0.9, np.zeros((6, 2)))
    assert faces._not_holding_faces(portrait, [real_face, eye], FaceSettings()) == [real_face, eye]
    bigger = faces.Face((100, 100, 200, 200), 0.95, np.zeros((6, 2)))  # half its side: the same face
    assert faces._merge([unsure], [bigger], 0.3, sure_score=0.75) == [unsure]

"""Every hostile upload in the corpus gets a specific message through the code the UI/API/CLI use."""

from __future__ import annotations

import json
import subprocess
import sys

import gradio as gr
import numpy as np
import pytest

import corpus
from conftest import ROOT
from deepfake_detector import handlers, ui
from deepfake_detector.errors import ImageError
from deepfake_detector.imaging import load_image

CORPUS = corpus.build()


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for name, (data, _, _) in CORPUS.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_predictor_handles_upload(predictor, corpus_dir, name):
    _, error, note = CORPUS[name]
    pred = predictor.predict(str(corpus_dir / name))
    if error:
        assert pred.error is not None and error in pred.error, pred.error
        assert pred.label is None
    else:
        assert pred.error is None, pred.error
        assert pred.label in ("real", "fake") and 0.0 <= pred.p_fake <= 1.0
        if note:
            assert any(note in n for n in pred.notes), pred.notes


@pytest.mark.parametrize("name", sorted(n for n, v in CORPUS.items() if v[1]))
def test_ui_turns_bad_upload_into_friendly_error(predictor, corpus_dir, name):
    detect = ui._user_errors(lambda path: ui.detect(predictor, path))
    with pytest.raises(gr.Error) as info:
        detect(str(corpus_dir / name))
    assert CORPUS[name][1] in info.value.message
    assert "Traceback" not in info.value.message


def test_exif_orientation_is_applied(corpus_dir):
    assert load_image(corpus_dir / "exif_rotated.jpg").rgb.shape[:2] == (120, 60)
    assert load_image(corpus_dir / "exif_invalid.jpg").rgb.shape[:2] == (60, 120)  # not turned


def test_sixteen_bit_keeps_its_range(corpus_dir):
    rgb = load_image(corpus_dir / "sixteen_bit.png").rgb
    assert rgb.dtype == np.uint8 and rgb.max() > 200 and rgb.min() < 10


def _cli(*args) -> subprocess.CompletedProcess:
    """The CLI as a user runs it, on this checkout's code, without progress bars."""
    return subprocess.run([sys.executable, "-m", "deepfake_detector.predict", *map(str, args), "--quiet"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})


def test_cli_reports_bad_files_and_keeps_going(bundle_dir, corpus_dir):
    result = _cli(corpus_dir, "--model", bundle_dir)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    by_name = {r["file"].rsplit("/", 1)[-1]: r for r in rows}
    walked = {n for n in CORPUS if n.rsplit(".", 1)[-1] in ("jpg", "png", "gif", "tif")}
    assert set(by_name) == walked
    for name, row in by_name.items():
        assert set(row) >= {"file", "label", "p_fake", "confidence", "face_found", "error"}
        if CORPUS[name][1]:
            assert CORPUS[name][1] in row["error"]
            assert f"{name}: " in result.stderr
        else:
            assert row["error"] is None and row["label"] in ("real", "fake")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


def test_cli_exits_2_when_no_file_could_be_read(bundle_dir, tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    result = _cli(tmp_path, "--model", bundle_dir)
    assert result.returncode == 2
    assert "none of the 2 file(s) could be read" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stdout.splitlines()) == 2  # each file still gets its JSON line with the reason


# -- batch: zips and the CSV ---------------------------------------------------------------------
def _zip(path, members: dict[str, bytes], compression: int = 0):
    import zipfile

    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _batch(predictor, files):
    import csv

    table, csv_path = handlers.detect_batch(predictor, [str(f) for f in files])
    rows = {r[0]: dict(zip(handlers.BATCH_COLUMNS, r)) for r in table}
    with open(csv_path, newline="") as fh:
        return rows, list(csv.DictReader(fh))


def test_batch_zip_says_what_it_did_not_score(predictor, tmp_path):
    good = CORPUS["grayscale.jpg"][0]
    only_text = _zip(tmp_path / "notes.zip", {"readme.txt": b"hello"})
    inner = _zip(tmp_path / "inner.zip", {"a.jpg": good})
    mixed = _zip(tmp_path / "mixed.zip", {"a.jpg": good, "b.jfif": good, "readme.txt": b"hi",
                                          "inner.zip": inner.read_bytes(), "__MACOSX/._a.jpg": b"\0\5",
                                          ".DS_Store": b"\0"})
    rows, _ = _batch(predictor, [only_text, mixed])
    assert not any("MACOSX" in name or "DS_Store" in name for name in rows)  # OS clutter: skipped silently
    assert rows["notes.zip"]["error"] == "no images in the zip archive (it holds 1 file (readme.txt))"
    assert rows["mixed.zip/a.jpg"]["label"] in ("real", "fake")
    assert rows["mixed.zip/b.jfif"]["label"] in ("real", "fake")
    assert rows["mixed.zip"]["error"].startswith("2 files (readme.txt, inner.zip) skipped: not images")
    assert "zips inside zips are not opened" in rows["mixed.zip"]["error"]


@pytest.mark.parametrize("compression", ["stored", "deflated"])
def test_batch_zip_names_a_damaged_or_oversized_member_and_scores_the_rest(predictor, tmp_path, compression):
    import zipfile

    good = CORPUS["grayscale.jpg"][0]
    method = zipfile.ZIP_STORED if compression == "stored" else zipfile.ZIP_DEFLATED
    path = _zip(tmp_path / "damaged.zip", {"bad.jpg": good, "ok.jpg": good}, method)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("bad.jpg")
    start = info.header_offset + 30 + len("bad.jpg")
    for k in range(100, 140):  # bytes of bad.jpg's data (a deflate stream breaks, stored data fails its CRC)
        data[start + k] ^= 0xFF
    path.write_bytes(bytes(data))
    big = _zip(tmp_path / "big.zip", {"huge.png": b"\0" * (21 * 1024 * 1024), "ok.jpg": good})
    rows, _ = _batch(predictor, [path, big])
    assert rows["damaged.zip/ok.jpg"]["label"] in ("real", "fake")  # read after the damaged one
    assert rows["damaged.zip/bad.jpg"]["error"].startswith("could not be read from the zip archive (")
    assert rows["big.zip/huge.png"]["error"] == "file is 22.0 MB; the limit is 20 MB"
    assert rows["big.zip/ok.jpg"]["label"] in ("real", "fake")


def test_batch_zip_with_too_many_entries_or_oversized_members_gets_one_row_each(predictor, tmp_path):
    import zipfile

    from deepfake_detector.archives import MAX_ZIP_ENTRIES

    good = CORPUS["grayscale.jpg"][0]
    crowded = tmp_path / "crowded.zip"
    with zipfile.ZipFile(crowded, "w") as zf:
        for i in range(MAX_ZIP_ENTRIES + 1):
            zf.writestr(f"{i}.jpg", b"")
    oversized = _zip(tmp_path / "big.zip", {**{f"huge{i}.png": b"\0" * (21 * 1024 * 1024) for i in range(4)},
                                            "ok.jpg": good}, zipfile.ZIP_DEFLATED)
    rows, _ = _batch(predictor, [crowded, oversized])
    assert len(rows) == 3, list(rows)  # one row per zip problem, one per image
    assert rows["crowded.zip"]["error"] == (f"the zip archive lists {MAX_ZIP_ENTRIES + 1:,} entries; at most "
                                            f"{MAX_ZIP_ENTRIES:,} are read: split it up")
    assert rows["big.zip"]["error"].startswith("4 files (huge0.png, huge1.png, huge2.png, ...) skipped: over the 20 MB")
    assert rows["big.zip/ok.jpg"]["label"] in ("real", "fake")


def test_batch_zip_whose_end_record_understates_its_directory_is_refused_unread(tmp_path):
    """zipfile reads the whole directory whatever count the end record declares: a zip listing
    17,000 entries that says it holds one is refused from the directory's declared size."""
    import struct

    from deepfake_detector.archives import MAX_ZIP_DIRECTORY_BYTES, read_zip

    directory = bytearray()
    for i in range(17_000):
        name = b"%0200d/" % i
        directory += struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0,
                                 len(name), 0, 0, 0, 0, 0x10, 0) + name
    assert len(directory) > MAX_ZIP_DIRECTORY_BYTES
    liar = tmp_path / "liar.zip"
    liar.write_bytes(bytes(directory) + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), 0, 0))
    found = read_zip(liar, 20 * 10**6)
    assert not found.names and found.problems == [("liar.zip", f"the zip archive's list of entries is "
                                                   f"{len(directory) / 1e6:.1f} MB; at most 4 MB is read: split it up")]


def test_batch_csv_cells_never_run_as_formulas(predictor, tmp_path):
    named = tmp_path / "=HYPERLINK(1).jpg"
    named.write_bytes(CORPUS["grayscale.jpg"][0])
    rows, csv_rows = _batch(predictor, [named])
    assert "=HYPERLINK(1).jpg" in rows  # the table shows the name as it is
    assert csv_rows[0]["file"] == "'=HYPERLINK(1).jpg" and csv_rows[0]["label"] in ("real", "fake")


def test_batch_refuses_a_zip_beyond_the_image_cap_before_reading_it(predictor, tmp_path):
    import zipfile

    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(handlers.MAX_BATCH_FILES + 1):
            zf.writestr(f"{i}.jpg", b"")
    with pytest.raises(ImageError, match=r"many.zip holds 201 images; the batch has room for 200 more"):
        handlers.detect_batch(predictor, [str(many)])


def test_cli_opens_zips_like_the_batch_tab(bundle_dir, tmp_path):
    good = CORPUS["grayscale.jpg"][0]
    archive = _zip(tmp_path / "photos.zip", {"a.jpg": good, "sub/b.png": CORPUS["rgba.png"][0], "notes.txt": b"x"})
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    result = _cli(archive, tmp_path / "broken.zip", "--model", bundle_dir)
    rows = {r["file"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows["photos.zip/a.jpg"]["label"] in ("real", "fake")
    assert rows["photos.zip/sub/b.png"]["label"] in ("real", "fake")
    assert rows["photos.zip"]["error"].startswith("1 file (notes.txt) skipped: not images")
    assert rows["broken.zip"]["error"] == "not a valid zip archive"
    assert result.returncode == 1 and "Traceback" not in result.stderr

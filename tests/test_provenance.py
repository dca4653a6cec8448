"""What files declare about how they were made (provenance.py), on files made here: C2PA manifests
signed with a throwaway certificate chain (valid, tampered, truncated, remote, trusted), generator
PNGs, IPTC XMP, EXIF Software, stripped copies and hostile metadata; then through the Predictor,
the batch CSV, the CLI and a video."""

from __future__ import annotations

import csv
import io
import json
import time
import tracemalloc

import cv2
import numpy as np
import pytest
from PIL import Image

import provenance_files as pf
from conftest import ROOT
from deepfake_detector import provenance, video
from deepfake_detector.handlers import BATCH_COLUMNS, detect_batch
from deepfake_detector.imaging import load_image
from deepfake_detector.inference import Predictor
from deepfake_detector.predict import main as cli

NOTHING = {"declared": None, "source": None, "generator": None, "c2pa": None, "notes": []}


@pytest.fixture(scope="module")
def signed_jpeg() -> bytes:
    # A comment segment: covered by the manifest's hash, and harmless to the pixels when altered.
    return pf.sign(pf.picture(comment=b"made for the provenance tests"))


# -- C2PA ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "AVIF"])
def test_a_signed_ai_manifest_is_declared_valid_and_untrusted_without_a_trust_list(fmt):
    prov = provenance.read(pf.sign(pf.picture(fmt), pf.MIME[fmt]))
    assert prov["declared"] == "ai_generated" and prov["source"] == "c2pa" and prov["generator"] == "TestGen 1.0"
    assert prov["c2pa"] == {"present": True, "valid": True, "trusted": False, "issuer": pf.ORG,
                            "claim_generator": "TestGen 1.0", "actions": ["c2pa.created"],
                            "problems": ["signingCredential.untrusted"]}
    assert provenance.headline_prefix(prov) == (f"Declared AI-generated — C2PA, signed by {pf.ORG} "
                                                 f"(signed, issuer not on a trust list)")


def test_a_trust_anchor_file_makes_its_issuer_trusted(signed_jpeg, tmp_path, monkeypatch):
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(pf.certificates()[2])
    monkeypatch.setenv(provenance.TRUST_ANCHORS_ENV, str(anchors))
    prov = provenance.read(signed_jpeg)
    assert prov["c2pa"]["valid"] and prov["c2pa"]["trusted"] and prov["c2pa"]["problems"] == []
    assert "signature valid, issuer on the configured trust list" in provenance.describe_markdown(prov)


def test_an_unusable_trust_anchor_file_is_a_note(signed_jpeg, tmp_path, monkeypatch):
    monkeypatch.setenv(provenance.TRUST_ANCHORS_ENV, str(tmp_path / "missing.pem"))
    prov = provenance.read(signed_jpeg)
    assert prov["c2pa"]["valid"] and not prov["c2pa"]["trusted"]
    assert any(provenance.TRUST_ANCHORS_ENV in n and "no trust list was applied" in n for n in prov["notes"])


def test_one_altered_byte_invalidates_the_manifest_and_the_pixels_still_decode(signed_jpeg):
    at = signed_jpeg.index(b"made for the provenance tests")
    tampered = bytearray(signed_jpeg)
    tampered[at] ^= 0x01
    prov = provenance.read(bytes(tampered))
    assert prov["c2pa"]["present"] and prov["c2pa"]["valid"] is False and prov["c2pa"]["trusted"] is False
    assert "assertion.dataHash.mismatch" in prov["c2pa"]["problems"]
    assert prov["notes"] == ["the C2PA manifest does not verify (assertion.dataHash.mismatch): the file or its "
                             "manifest was altered after signing, or is damaged"]
    assert prov["declared"] == "ai_generated"  # still what the file says, flagged as not verifying
    assert "does not verify" in provenance.headline_prefix(prov)
    assert load_image(bytes(tampered)).rgb.shape == (96, 96, 3)


def test_a_truncated_manifest_is_a_named_note_and_the_pixels_still_decode(signed_jpeg):
    segments = pf.jpeg_segments(signed_jpeg)
    store = [i for i, (marker, _) in enumerate(segments) if marker == 0xEB]
    first = segments[store[0]][1]
    cut = [s for i, s in enumerate(segments) if i not in store[1:]]
    cut[store[0]] = (0xEB, first[:len(first) // 2])  # the JUMBF boxes now claim more than there is
    damaged = pf.jpeg_from_segments(cut)
    prov = provenance.read(damaged)
    assert prov["c2pa"]["present"] and prov["c2pa"]["valid"] is False and prov["declared"] is None
    assert any(n.startswith("the C2PA manifest could not be read: it is truncated or damaged") for n in prov["notes"])
    assert load_image(damaged).rgb.shape == (96, 96, 3)


def test_a_file_cut_short_inside_its_manifest_is_a_note():
    data = pf.sign(pf.picture())
    prov = provenance.read(data[:data.index(b"jumb") + 200])
    assert any("the file ends inside a metadata block" in n for n in prov["notes"])
    assert any("the C2PA manifest could not be read" in n for n in prov["notes"])


def test_camera_captures_and_ai_edits_are_told_apart():
    camera = provenance.read(pf.sign(pf.picture(), actions=[("c2pa.created", "digitalCapture")]))
    assert camera["declared"] == "camera" and provenance.headline_prefix(camera) is None
    edited = provenance.read(pf.sign(pf.picture(), actions=[("c2pa.created", "digitalCapture"),
                                                            ("c2pa.edited", "compositeWithTrainedAlgorithmicMedia")]))
    assert edited["declared"] == "ai_edited" and edited["c2pa"]["actions"] == ["c2pa.created", "c2pa.edited"]
    assert provenance.headline_prefix(edited).startswith("Declared AI-edited — C2PA")


def test_a_remote_manifest_is_reported_and_never_fetched():
    start = time.perf_counter()
    prov = provenance.read(pf.sign(pf.picture(), remote_url="http://192.0.2.1/manifest.c2pa"))  # TEST-NET
    assert time.perf_counter() - start < 2
    assert prov["c2pa"]["present"] is False and prov["declared"] is None
    assert any("kept elsewhere (http://192.0.2.1/manifest.c2pa): not fetched" in n for n in prov["notes"])


def test_a_c2pa_check_past_its_time_limit_is_abandoned_with_a_note(signed_jpeg, monkeypatch):
    monkeypatch.setattr(provenance, "C2PA_TIME_LIMIT_S", 0.05)
    monkeypatch.setattr(provenance, "_c2pa_report", lambda f: time.sleep(1))
    prov = provenance.read(signed_jpeg)
    assert prov["c2pa"]["valid"] is False and any("abandoned" in n for n in prov["notes"])


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_stripped_copy_declares_nothing(fmt):
    signed = pf.sign(pf.picture(fmt), pf.MIME[fmt])
    stripped = io.BytesIO()
    Image.open(io.BytesIO(signed)).save(stripped, fmt)  # what re-encoding by a messaging app does
    assert provenance.read(stripped.getvalue()) == NOTHING
    panel = provenance.describe_markdown(NOTHING)
    assert panel.startswith("**Nothing declared:**") and "a file that declares nothing proves nothing" in panel


# -- XMP, PNG text, EXIF ---------------------------------------------------------------------------------
@pytest.mark.parametrize("source_type, as_attribute, declared", [
    ("trainedAlgorithmicMedia", False, "ai_generated"), ("trainedAlgorithmicMedia", True, "ai_generated"),
    ("compositeWithTrainedAlgorithmicMedia", False, "ai_edited"), ("digitalCapture", True, "camera")])
def test_iptc_digital_source_type_in_jpeg_xmp(source_type, as_attribute, declared):
    xmp = pf.xmp_packet(pf.iptc_description(source_type, creator="Some Tool 2.0", as_attribute=as_attribute))
    prov = provenance.read(pf.xmp_jpeg(xmp))
    assert prov == {"declared": declared, "source": "xmp:DigitalSourceType", "generator": "Some Tool 2.0",
                    "c2pa": None, "notes": []}


def test_xmp_in_a_png_itxt_chunk():
    xmp = pf.xmp_packet(pf.iptc_description("trainedAlgorithmicMedia"))
    prov = provenance.read(pf.png_with(pf.itext("XML:com.adobe.xmp", xmp, compressed=True)))
    assert prov["declared"] == "ai_generated" and prov["source"] == "xmp:DigitalSourceType"


def test_a_source_type_that_is_neither_ai_nor_camera_is_a_note():
    prov = provenance.read(pf.xmp_jpeg(pf.xmp_packet(pf.iptc_description("digitalCreation"))))
    assert prov["declared"] is None and any("'digitalCreation', which says neither" in n for n in prov["notes"])


@pytest.mark.parametrize("chunks, source, generator", [
    ([pf.text("parameters", pf.A1111)], "png:parameters",
     "Stable Diffusion WebUI v1.10.1, model v1-5-pruned-emaonly"),
    ([pf.text("prompt", pf.COMFY_PROMPT), pf.text("workflow", pf.COMFY_WORKFLOW)], "png:prompt", "ComfyUI"),
    ([pf.ztext("workflow", pf.COMFY_WORKFLOW.encode())], "png:workflow", "ComfyUI"),
    ([pf.itext("invokeai_metadata", pf.INVOKE.encode(), compressed=True)], "png:invokeai_metadata", "InvokeAI 4.2.9"),
    ([pf.text("Software", "NovelAI"), pf.text("Source", "NovelAI Diffusion V4 4F49EC75")], "png:Software",
     "NovelAI (NovelAI Diffusion V4 4F49EC75)")])
def test_generator_settings_in_png_text(chunks, source, generator):
    prov = provenance.read(pf.png_with(*chunks))
    assert prov == {"declared": "ai_generated", "source": source, "generator": generator, "c2pa": None, "notes": []}
    assert provenance.summary(prov) == f"ai_generated ({source})"


def test_exif_software_naming_a_generator_and_one_that_does_not():
    prov = provenance.read(pf.exif_jpeg("Adobe Firefly Image 3"))
    assert (prov["declared"], prov["source"], prov["generator"]) == ("ai_generated", "exif:Software",
                                                                    "Adobe Firefly Image 3")
    assert provenance.read(pf.exif_jpeg("GIMP 2.10.36")) == NOTHING


def test_c2pa_outranks_xmp_and_a_manifest_that_declares_nothing_leaves_xmp_to_decide():
    xmp = pf.xmp_packet(pf.iptc_description("digitalCapture"))
    signed = pf.sign(pf.xmp_jpeg(xmp))
    assert provenance.read(signed)["source"] == "c2pa"
    prov = provenance.read(pf.xmp_jpeg(xmp, pf.sign(pf.picture(), actions=[("c2pa.created", "digitalCreation")])))
    assert prov["declared"] == "camera" and prov["source"] == "xmp:DigitalSourceType"
    assert prov["c2pa"]["present"] and "C2PA manifest signed by" in provenance.describe_markdown(prov)


def test_plain_files_arrays_and_missing_files():
    assert provenance.read(pf.picture()) == NOTHING
    assert provenance.read(pf.picture("PNG")) == NOTHING
    assert provenance.read(np.zeros((32, 32, 3), np.uint8)) is None
    assert provenance.read("/no/such/file.jpg") is None
    assert provenance.describe_markdown(None).startswith("**Provenance:** not read for this input")


# -- hostile metadata -----------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [pf.ztext("parameters", b"a" * 50_000_000),
                                   pf.itext("parameters", b"a" * 50_000_000, compressed=True)])
def test_a_text_chunk_inflating_to_50_mb_is_capped_fast_and_the_pixels_are_scored(chunk):
    bomb = pf.png_with(chunk)
    assert len(bomb) < 100_000
    tracemalloc.start()
    start = time.perf_counter()
    prov = provenance.read(bomb)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 8_000_000
    assert prov["notes"] == ["the PNG text chunk 'parameters' inflates to more than 1 MB: only its first 1 MB was read"]
    loaded = load_image(bomb)  # Pillow alone refuses the whole file
    assert loaded.rgb.shape == (96, 96, 3)
    assert any("text metadata was skipped" in n for n in loaded.notes)


@pytest.mark.parametrize("xmp, note", [
    (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF', "the XMP metadata is malformed XML"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><x>&b;</x>',
     "declares a DOCTYPE or entities"),
    (b"<x>" + b" " * (provenance.MAX_XMP_BYTES + 1) + b"</x>", "over 1 MB is not parsed")])
def test_broken_or_hostile_xmp_is_a_note_and_the_pixels_still_decode(xmp, note):
    data = pf.xmp_jpeg(xmp) if len(xmp) < 65_000 else pf.png_with(pf.itext("XML:com.adobe.xmp", xmp))
    prov = provenance.read(data)
    assert prov["declared"] is None and len(prov["notes"]) == 1 and note in prov["notes"][0]
    assert load_image(data).rgb.shape == (96, 96, 3)


@pytest.mark.parametrize("damage, note", [
    ("segment length", "a JPEG segment declares a length of 1"),
    ("EXIF directory", "the EXIF block is malformed (its directory runs past its end)"),
    ("zlib", "the PNG text chunk 'parameters' is not valid compressed data")])
def test_malformed_metadata_blocks_are_named_notes(damage, note):
    if damage == "segment length":
        data = pf.picture()[:2] + b"\xff\xe1\x00\x01" + pf.picture()[2:]
    elif damage == "EXIF directory":
        data = pf.with_jpeg_segment(pf.picture(), 0xE1, b"Exif\x00\x00II*\x00\xff\xff\x00\x00")
    else:
        data = pf.png_with(pf.png_chunk(b"zTXt", b"parameters\x00\x00not zlib at all"))
    prov = provenance.read(data)
    assert prov["declared"] is None and len(prov["notes"]) == 1 and note in prov["notes"][0]


# -- every answer carries it -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served() -> Predictor:
    return Predictor(ROOT / "models" / "default")


def test_predictions_carry_provenance_and_the_headline_says_what_is_declared(served, signed_jpeg):
    pred = served.predict(signed_jpeg, name="signed.jpg")
    plain = served.predict(pf.picture(), name="plain.jpg")
    d = pred.to_dict()
    assert d["provenance"]["declared"] == "ai_generated" and d["provenance"]["c2pa"]["issuer"] == pf.ORG
    assert pred.headline.startswith(f"Declared AI-generated — C2PA, signed by {pf.ORG}")
    assert pred.headline.endswith(plain.headline)  # the pixel verdict follows, unchanged
    assert pred.p_fake == plain.p_fake  # same pixels, same score: provenance never moves it
    assert plain.to_dict()["provenance"] == NOTHING
    json.dumps(d)
    many = list(served.predict_many([signed_jpeg, pf.picture(), b"not an image"]))
    assert [p.provenance["declared"] for p in many] == ["ai_generated", None, None]
    assert many[2].error and many[2].provenance is not None


def test_the_batch_csv_has_a_provenance_column(served, signed_jpeg, tmp_path):
    (tmp_path / "signed.jpg").write_bytes(signed_jpeg)
    (tmp_path / "a1111.png").write_bytes(pf.png_with(pf.text("parameters", pf.A1111)))
    (tmp_path / "plain.jpg").write_bytes(pf.picture())
    table, csv_path = detect_batch(served, [str(tmp_path / n) for n in ("signed.jpg", "a1111.png", "plain.jpg")])
    rows = {r["file"]: r for r in csv.DictReader(open(csv_path, newline=""))}
    assert list(rows["plain.jpg"]) == BATCH_COLUMNS
    assert rows["signed.jpg"]["provenance"] == "ai_generated (c2pa)"
    assert rows["a1111.png"]["provenance"] == "ai_generated (png:parameters)"
    assert rows["plain.jpg"]["provenance"] == ""


def test_the_cli_prints_provenance(signed_jpeg, tmp_path, capsys):
    (tmp_path / "signed.jpg").write_bytes(signed_jpeg)
    assert cli([str(tmp_path / "signed.jpg"), "--model", str(ROOT / "models" / "default"), "--quiet"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["kind"] == "image" and row["provenance"]["source"] == "c2pa"
    assert row["provenance"]["c2pa"]["valid"] is True


def test_a_signed_video_declares_what_its_manifest_says(served, tmp_path):
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 96))
    for i in range(10):
        writer.write(np.full((96, 96, 3), 20 * i, np.uint8))
    writer.release()
    plain = video.predict_video(served, clip).to_dict()
    assert plain["provenance"] == NOTHING
    clip.write_bytes(pf.sign(clip.read_bytes(), "video/mp4"))
    result = video.predict_video(served, clip)
    assert result.to_dict()["provenance"]["declared"] == "ai_generated"
    assert result.to_dict()["provenance"]["c2pa"]["valid"] is True
    assert result.headline.startswith("Declared AI-generated — C2PA")
    assert result.p_fake == plain["p_fake"]

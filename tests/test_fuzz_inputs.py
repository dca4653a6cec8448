"""400 mutated JPEG/PNG/GIF/WebP files: each is scored or refused with a message that names what is wrong.

Seeded mutations (flipped, inserted and deleted bytes, truncation, a damaged header byte) of small
images made here, run through `load_image` and through the handler the UI and API call.
"""

from __future__ import annotations

import io
import random
import re
import time

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from deepfake_detector import ui
from deepfake_detector.errors import ImageError
from deepfake_detector.imaging import load_image

N_FILES = 400
# Every refusal must say which of these it is (as the hand-made corpus's messages do).
SPECIFIC = re.compile(r"is truncated|is corrupt|is damaged|does not support|not a recognised image format|"
                      r"megapixels|pixels; at least|text file|PDF document|zip archive|empty \(0 bytes\)")
GENERIC = re.compile(r"could not be read|\(\w*(Error|Exception)\)|internal error")


def _seeds() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    pixels = np.clip(np.stack([xx * 4, yy * 5, 128 + rng.normal(0, 30, xx.shape)], axis=-1), 0, 255).astype(np.uint8)
    im = Image.fromarray(pixels)
    out = []
    for fmt, options in (("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {}), ("GIF", {}),
                         ("WEBP", {}), ("WEBP", {"lossless": True})):
        buf = io.BytesIO()
        im.save(buf, fmt, **options)
        out.append((fmt, buf.getvalue()))
    return out


def mutated_files(n: int = N_FILES, seed: int = 15) -> list[tuple[str, bytes]]:
    """`n` (description, bytes) mutations, the same on every run."""
    r = random.Random(seed)
    seeds = _seeds()
    files = []
    for i in range(n):
        fmt, original = seeds[i % len(seeds)]
        data = bytearray(original)
        op = ("flip", "truncate", "insert", "delete", "header")[(i // len(seeds)) % 5]
        if op == "flip":
            for _ in range(r.randint(1, 8)):
                data[r.randrange(len(data))] = r.randrange(256)
        elif op == "truncate":
            data = data[: r.randrange(1, len(data))]
        elif op == "insert":
            at = r.randrange(len(data))
            data[at:at] = bytes(r.randrange(256) for _ in range(r.randint(1, 16)))
        elif op == "delete":
            at = r.randrange(len(data))
            del data[at:at + r.randint(1, 32)]
        else:
            data[r.randrange(min(64, len(data)))] = r.randrange(256)
        files.append((f"#{i} {fmt} {op}", bytes(data)))
    return files


FILES = mutated_files()


def test_every_mutated_file_decodes_or_gets_a_specific_message():
    start = time.perf_counter()
    outcomes = {"decoded": 0, "refused": 0}
    for what, data in FILES:
        try:
            loaded = load_image(data)
        except ImageError as exc:
            message = str(exc)
            assert SPECIFIC.search(message) and not GENERIC.search(message), f"{what}: {message!r}"
            outcomes["refused"] += 1
        else:
            assert loaded.rgb.dtype == np.uint8 and loaded.rgb.ndim == 3 and loaded.rgb.shape[2] == 3, what
            outcomes["decoded"] += 1
    # The mutations exercise both paths, and the test stays cheap.
    assert outcomes["decoded"] >= 40 and outcomes["refused"] >= 200, outcomes
    assert time.perf_counter() - start < 60


@pytest.fixture(scope="module")
def bundled_predictor():
    from deepfake_detector.inference import Predictor

    return Predictor(ROOT / "models" / "default")


def test_every_mutated_file_gets_an_answer_or_a_clear_error_from_the_handler(bundled_predictor, tmp_path):
    """The handler the UI and API call: a result, or a gr.Error naming the problem; never 'internal error'."""
    detect = ui._user_errors(lambda path: ui.detect(bundled_predictor, path))
    start = time.perf_counter()
    for i, (what, data) in enumerate(FILES):
        path = tmp_path / f"upload{i}.bin"
        path.write_bytes(data)
        try:
            result = detect(str(path))
        except gr.Error as exc:
            assert SPECIFIC.search(exc.message) and not GENERIC.search(exc.message), f"{what}: {exc.message!r}"
        else:
            assert result[0]["label"] in ("real", "fake") and result[0]["error"] is None, what
    assert time.perf_counter() - start < 75

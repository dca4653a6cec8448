"""A generated corpus of hostile and unusual uploads, with what the app must say about each."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _face_like(size=(200, 160)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions (decompression bomb): tiny file, billions of pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def _exif_rotated() -> bytes:
    img = Image.fromarray(np.zeros((60, 120, 3), np.uint8) + 128)  # landscape pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW" on display: portrait
    return _jpeg(img, exif=exif)


def _exif_invalid() -> bytes:
    img = Image.fromarray(np.zeros((60, 120, 3), np.uint8) + 128)
    exif = Image.Exif()
    exif[0x0112] = 99  # not one of the eight EXIF orientations
    return _jpeg(img, exif=exif)


def _multipage_tiff() -> bytes:
    pages = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    return buf.getvalue()


def _mp4_header() -> bytes:
    """The start of an MP4 file (an 'ftyp' box, then a truncated 'mdat'): a video, not an image."""
    ftyp = b"isom\x00\x00\x02\x00isomiso2avc1mp41"
    return struct.pack(">I", 8 + len(ftyp)) + b"ftyp" + ftyp + struct.pack(">I", 4096) + b"mdat" + b"\x00" * 256


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def _palette_transparent() -> bytes:
    img = Image.new("P", (64, 64), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.info["transparency"] = 0
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=0)
    return buf.getvalue()


def build() -> dict[str, tuple[bytes, str | None, str | None]]:
    """name -> (file bytes, expected error substring or None, expected note substring or None)."""
    good = _jpeg(_face_like())
    rgba = Image.fromarray(np.dstack([np.asarray(_face_like()), np.full((160, 200), 128, np.uint8)]), "RGBA")
    sixteen = Image.fromarray((np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16), "I;16")
    return {
        "zero_bytes.jpg": (b"", "empty (0 bytes)", None),
        "truncated.jpg": (good[: len(good) // 2], "JPEG file is truncated", None),
        "random_bytes.jpg": (np.random.default_rng(1).integers(0, 255, 5000, dtype=np.uint8).tobytes(),
                             "not a recognised image format", None),
        "text_renamed.jpg": (b"hello, this is not a picture\n" * 20, "text file, not an image", None),
        "pdf_renamed.jpg": (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", "PDF document", None),
        "bomb.png": (_png_header_only(60000, 60000), "megapixels", None),
        "one_pixel.png": (_png(Image.new("RGB", (1, 1))), "only 1x1 pixels", None),
        "grayscale.jpg": (_jpeg(_face_like().convert("L")), None, None),
        "rgba.png": (_png(rgba), None, "transparent areas flattened"),
        "palette_transparent.png": (_palette_transparent(), None, "transparent areas flattened"),
        "cmyk.jpg": (_jpeg(_face_like().convert("CMYK")), None, "converted from CMYK"),
        "sixteen_bit.png": (_png(sixteen), None, "high bit-depth"),
        "animated.gif": (_animated_gif(), None, "first of 3 frames"),
        "exif_rotated.jpg": (_exif_rotated(), None, "EXIF orientation 6 applied"),
        "exif_invalid.jpg": (_exif_invalid(), None, "EXIF orientation 99 is not a valid value (1-8): ignored"),
        "multipage.tif": (_multipage_tiff(), None, "multi-page image: scored the first of 2 pages"),
        "video_renamed.jpg": (_mp4_header(), "this is a video (MP4), not an image", None),
        "iphone.heic": (_mp4_header().replace(b"isom", b"heic", 1), "this is a HEIC image, a format this "
                        "decoder does not read", None),
        "too_large.jpg": (good + b"\x00" * (21 * 1024 * 1024), "the limit is 20 MB", None),
    }

"""Turn any user file into a clean RGB array, or a clear `ImageError`.

Every still image is decoded here: the training cache and the serving path both call
`load_image` + `resize_square`, so what the model sees at serving time is produced by exactly
the code that produced its training data. (Video frames come from OpenCV in `video.py`.)
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from .errors import ImageError

MIN_SIDE = 16
# Files the dataset scan and folder walks pick up as still images (load_image tries any file given).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
EXIF_TURNS = frozenset(range(2, 9))  # EXIF orientations that flip or turn the picture


@dataclass(frozen=True)
class InputLimits:
    """What a user may send; a deployment sets them through ServingSettings (environment)."""
    max_upload_mb: float = 20.0  # image files
    max_megapixels: float = 40.0  # checked from the header, before the pixels are decoded
    max_video_mb: float = 200.0
    max_video_seconds: float = 600.0


DEFAULT_LIMITS = InputLimits()


@dataclass
class LoadedImage:
    rgb: np.ndarray  # H x W x 3, uint8
    notes: list[str] = field(default_factory=list)
    mode: str = "RGB"  # the file's own colour mode before conversion ("L" = grayscale)
    jpeg_quality: int | None = None  # estimated from the quantisation tables, JPEG files only


# libjpeg's standard luminance quantisation table (quality 50), in natural order as Pillow reports it.
_STD_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57,
                      69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55,
                      64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100,
                      103, 99], dtype=np.float64)


def estimate_jpeg_quality(im: Image.Image) -> int | None:
    """Invert libjpeg's quality scaling of the luminance table (exact for libjpeg-made files)."""
    tables = getattr(im, "quantization", None)
    if not tables or 0 not in tables or len(tables[0]) != 64:
        return None
    table = np.asarray(tables[0], np.float64)
    unclipped = (table > 1) & (table < 255)  # libjpeg clips scaled entries to 1..255
    if not unclipped.any():
        return 100 if table.max() <= 1 else 1
    scale = float(np.median(table[unclipped] / _STD_LUMA[unclipped] * 100.0))
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return int(np.clip(round(quality), 1, 100))


# ISO base media files ('ftyp' box) whose major brand is a still image, not a video.
_HEIF_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"heim": "HEIC", b"heis": "HEIC", b"hevc": "HEIC",
                b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}


def _media_container(head: bytes) -> tuple[str, str] | None:
    """("image" or "video", format) for the media containers a file's first bytes announce: an ISO
    base media file ('ftyp' box: HEIC/HEIF/AVIF stills, MP4/MOV videos), WebM/Matroska or AVI."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return "image", _HEIF_BRANDS[brand]
        return "video", "MOV" if brand[:2] == b"qt" else "MP4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", "WebM/Matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", "AVI"
    return None


def _describe_non_image(head: bytes) -> str:
    container = _media_container(head)
    if container:
        kind, fmt = container
        if kind == "image":
            return f"this is a {fmt} image, a format this decoder does not read: convert it to JPEG or PNG"
        return f"this is a video ({fmt}), not an image: use the Video tab or the /predict_video endpoint"
    if head.startswith(b"%PDF"):
        return "this is a PDF document, not an image"
    if head[:4] in (b"PK\x03\x04",):
        return "this is a zip archive, not an image"
    sample = head[:512]
    if sample and all(32 <= b < 127 or b in b"\r\n\t" for b in sample):
        return "this is a text file, not an image"
    return "the file is not a recognised image format (JPEG, PNG, WebP, GIF, BMP, TIFF)"


_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
          (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"))


def _sniff_format(head: bytes) -> str | None:
    """The image format a file's first bytes announce, whether or not the rest is readable."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((fmt for magic, fmt in _MAGIC if head.startswith(magic)), None)


def _pillow_detail(exc: BaseException) -> str:
    """Pillow's own words, without object addresses, short."""
    text = re.sub(r"\s*<[^>]*>", "", str(exc)).strip().rstrip(".")
    return text[:80] or type(exc).__name__


def _describe_decode_error(exc: BaseException, fmt: str | None, stage: str) -> str:
    """Say what is wrong with a file Pillow failed on: truncated, corrupt data, damaged header, unsupported.

    `stage` is "header" (Image.open failed) or "data" (decoding the pixels failed).
    """
    what = f"the {fmt} file" if fmt else "the image file"
    text = str(exc)
    low = text.lower()
    if "truncated" in low:
        where = "inside its header" if stage == "header" else "before its image data does"
        return f"{what} is truncated: it ends {where} (an incomplete upload or download?)"
    if isinstance(exc, SyntaxError) or "broken png" in low:
        part = ("a chunk checksum does not match" if "checksum" in low or "crc" in low
                else "a chunk is malformed" if "chunk" in low else _pillow_detail(exc))
        return f"{what} is damaged: {part}"
    if "broken data stream" in low or "unrecognized data stream" in low or "failed to read next frame" in low \
            or "decoder error" in low or "could not create decoder" in low:
        return f"{what} is corrupt: its compressed image data cannot be decoded"
    if "codec configuration" in low or "not supported" in low or "unsupported" in low or "unknown" in low:
        return f"{what} uses an encoding or feature this decoder does not support ({_pillow_detail(exc)})"
    if stage == "header" or isinstance(exc, (ValueError, IndexError, struct.error, EOFError)):
        return f"{what} is damaged: its header is inconsistent ({_pillow_detail(exc)})"
    return f"{what} is corrupt: its image data cannot be decoded ({_pillow_detail(exc)})"


def _read_bytes(source: str | os.PathLike | bytes, max_bytes: int) -> bytes:
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"file not found: {path.name}")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(f"file is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
        data = path.read_bytes()
    if len(data) == 0:
        raise ImageError("the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageError(f"file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    return data


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_without_text_bombs(data: bytes, notes: list[str]) -> bytes:
    """The PNG without its text chunks when one of them inflates past what Pillow reads (it then refuses
    the whole file, though the pixels do not depend on them); unchanged otherwise. Only files that
    have compressed text are walked, and nothing is inflated past Pillow's own limits."""
    if b"zTXt" not in data and b"iTXt" not in data:
        return data
    chunks, offset, inflated, bomb = [], 8, 0, False
    while offset + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        end = offset + 12 + length
        if kind in (b"zTXt", b"iTXt"):
            body = data[offset + 8:end - 4]
            _, _, rest = body.partition(b"\x00")
            compressed = kind == b"zTXt" or rest[:1] == b"\x01"
            packed = rest[1:] if kind == b"zTXt" else rest[2:].split(b"\x00", 2)[-1]
            if compressed:
                inflater = zlib.decompressobj()
                try:
                    inflated += len(inflater.decompress(packed, PngImagePlugin.MAX_TEXT_CHUNK))
                except zlib.error:  # Pillow skips undecodable text itself
                    pass
                bomb = bomb or bool(inflater.unconsumed_tail) or inflated > PngImagePlugin.MAX_TEXT_MEMORY
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            chunks.append(data[offset:end])
        offset = end
    if not bomb:
        return data
    notes.append(f"a PNG text chunk inflates past {PngImagePlugin.MAX_TEXT_CHUNK >> 20} MB: the text metadata "
                 f"was skipped and the pixels decoded without it")
    return data[:8] + b"".join(chunks) + data[offset:]


def _to_rgb(im: Image.Image, notes: list[str]) -> Image.Image:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im).astype(np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        notes.append("high bit-depth image reduced to 8 bits")
        return Image.fromarray(arr, "L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        notes.append("transparent areas flattened onto white")
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "CMYK":
        notes.append("converted from CMYK")
    if mode != "RGB":
        return im.convert("RGB")
    return im


def load_image(
    source: str | os.PathLike | bytes | Image.Image | np.ndarray,
    max_pixels: int | None = None,
    max_bytes: int | None = None,
) -> LoadedImage:
    """Decode `source` to RGB uint8, applying EXIF orientation; raise `ImageError` if unusable."""
    max_pixels = max_pixels or int(DEFAULT_LIMITS.max_megapixels * 1e6)
    max_bytes = max_bytes or int(DEFAULT_LIMITS.max_upload_mb * 1e6)
    notes: list[str] = []
    if isinstance(source, np.ndarray):
        im = Image.fromarray(_array_to_uint8(source))
    elif isinstance(source, Image.Image):
        im = source
    else:
        data = _read_bytes(source, max_bytes)
        if data.startswith(_PNG_MAGIC):
            data = _png_without_text_bombs(data, notes)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(f"image dimensions exceed the limit of {max_pixels / 1e6:.0f} megapixels") from None
        except UnidentifiedImageError:
            described = _describe_non_image(data)
            fmt = _sniff_format(data[:16])
            if fmt and described.startswith("the file is not a recognised"):
                described = f"the {fmt} file is damaged: it starts like a {fmt} image but its header cannot be read"
            raise ImageError(described) from None
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file for the user
            raise ImageError(_describe_decode_error(exc, _sniff_format(data[:16]), "header")) from None

    width, height = im.size
    if width * height > max_pixels:
        raise ImageError(f"image is {width}x{height} ({width * height / 1e6:.0f} megapixels); "
                         f"the limit is {max_pixels / 1e6:.0f} megapixels")
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"image is only {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")

    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        im.seek(0)
        kind, unit = ("multi-page image", "pages") if im.format == "TIFF" else ("animated image", "frames")
        notes.append(f"{kind}: scored the first of {frames} {unit}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
            orientation = im.getexif().get(0x0112, 1)
            # exif_transpose copies even an upright picture (~1.5 ms for 1024x768): only when needed.
            oriented = im if orientation not in EXIF_TURNS else ImageOps.exif_transpose(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image dimensions exceed the limit of {max_pixels / 1e6:.0f} megapixels") from None
    except Exception as exc:  # noqa: BLE001
        raise ImageError(_describe_decode_error(exc, _format_name(im), "data")) from None
    try:
        rgb = _to_rgb(oriented, notes)
    except Exception as exc:  # noqa: BLE001 - a damaged file can decode into pixels that do not convert
        raise ImageError(_describe_decode_error(exc, _format_name(im), "data")) from None
    if orientation in EXIF_TURNS:
        notes.append(f"EXIF orientation {orientation} applied")
    elif orientation not in (None, 1):
        notes.append(f"EXIF orientation {orientation} is not a valid value (1-8): ignored")
    quality = estimate_jpeg_quality(im) if im.format == "JPEG" else None
    return LoadedImage(np.asarray(rgb, dtype=np.uint8).copy(), notes, im.mode, quality)


def _format_name(im: Image.Image) -> str | None:
    return {"WEBP": "WebP"}.get(im.format or "", im.format)


def _array_to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ImageError(f"expected an H x W x 3 image array, got shape {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.dtype != np.uint8:
        scale = 255.0 if arr.dtype.kind == "f" and arr.max() <= 1.0 else 1.0
        arr = np.clip(arr.astype(np.float64) * scale, 0, 255).astype(np.uint8)
    return arr


def resize_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size with an antialiasing filter (used for training and serving)."""
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    im = Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8)

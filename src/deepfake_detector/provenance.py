"""What a file declares about how it was made, read from its metadata before any pixel is scored.

Every answer (Detect, /predict, /predict_batch, /predict_video, the CLI) carries it as `provenance`:

    {"declared": "ai_generated" | "ai_edited" | "camera" | None,
     "source": the declaration that decided ("c2pa", "xmp:DigitalSourceType", "png:parameters", ...) or None,
     "generator": the generator's name/version or None,
     "c2pa": {"present", "valid", "trusted", "issuer", "claim_generator", "actions", "problems"} or None,
     "notes": [plain-language remarks]}

Read, in this order of precedence: C2PA manifests (Content Credentials, checked by `c2pa-python`:
JPEG, PNG, WebP, HEIF/AVIF, MP4/MOV), the IPTC digital source type in XMP (JPEG APP1, PNG iTXt,
WebP, MP4), generator settings in PNG text chunks (Stable Diffusion WebUI/Forge, ComfyUI, InvokeAI,
NovelAI, Fooocus), and a generator named by EXIF or PNG `Software`.

A declaration is the file's word, not evidence: metadata can be stripped or forged, so a file
that declares nothing proves nothing. The pixel score never depends on it.

Hostile metadata is bounded: the file is walked by its segment, chunk or box headers (never read
whole here), a text chunk is inflated to at most MAX_TEXT_BYTES, XMP over MAX_XMP_BYTES or with a
DOCTYPE is not parsed, and the C2PA check runs on a thread of its own for at most C2PA_TIME_LIMIT_S
and never fetches anything (remote manifests, OCSP). Whatever fails becomes a note.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import re
import struct
import threading
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

TRUST_ANCHORS_ENV = "DEEPFAKE_C2PA_TRUST_ANCHORS"  # a PEM file of root certificates to trust
MAX_TEXT_BYTES = 1 << 20  # what one PNG text chunk may inflate to (Pillow's MAX_TEXT_CHUNK too)
MAX_XMP_BYTES = 1 << 20  # larger XMP packets are not parsed
MAX_CHUNK_BYTES = 8 << 20  # a metadata chunk larger than this is skipped unread
MAX_PARTS = 50_000  # segments, chunks or boxes walked in one file
C2PA_TIME_LIMIT_S = 10.0  # a 200 MB video's manifest check hashes the whole file (~1 s)
C2PA_MAX_MANIFEST_MB = 16  # what the C2PA library may inflate a manifest to

CAVEAT = ("Metadata can be stripped or forged: a file that declares nothing proves nothing, and a declaration "
          "is only as trustworthy as its signature. The verdict above comes from the pixels alone.")

# IPTC digital source types (http://cv.iptc.org/newscodes/digitalsourcetype/), as C2PA and XMP use them.
_SOURCE_TYPES = {"trainedAlgorithmicMedia": "ai_generated", "compositeWithTrainedAlgorithmicMedia": "ai_edited",
                 "digitalCapture": "camera", "computationalCapture": "camera",
                 "negativeFilm": "camera", "positiveFilm": "camera"}
_RANK = {"ai_generated": 3, "ai_edited": 2, "camera": 1}  # several actions: the strongest claim decides
_CREATED = ("c2pa.created",)

# Generators a `Software` tag may name (EXIF, PNG text); matched as whole words, any case.
# Only unambiguous names: "Flux" or "Imagen" (Spanish for "image") also name ordinary software.
_GENERATORS = re.compile(r"\b(stable diffusion|sdxl|dall[-·]?e|midjourney|firefly|comfyui|novelai|invokeai|"
                         r"automatic1111|fooocus|leonardo\.?ai|ideogram|dreamstudio|craiyon|"
                         r"bing image creator|image creator from microsoft designer)\b", re.IGNORECASE)

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_XMP_JPEG = b"http://ns.adobe.com/xap/1.0/\x00"
_C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")  # the ISO BMFF box that holds a manifest
_XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")  # XMP in an MP4 / MOV


@dataclass
class _Found:
    """What the walk over a file's metadata turned up."""
    xmp: bytes | None = None
    texts: dict[str, str] = field(default_factory=dict)  # PNG text chunks, by keyword
    software: tuple[str, str] | None = None  # (where, value): ("exif:Software", "...")
    manifest: bool = False  # a C2PA manifest store is embedded
    notes: list[str] = field(default_factory=list)


# -- the public answer ---------------------------------------------------------------------------
def read(source) -> dict | None:
    """What `source` (a file path or the file's bytes, as the pixel decoder gets them) declares;
    None for pictures handed over as arrays, which carry no metadata. Never raises."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        open_file = functools.partial(io.BytesIO, bytes(source))
    elif isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        open_file = functools.partial(open, source, "rb")
    else:
        return None
    found = _Found()
    try:
        with open_file() as f:
            _walk(f, found)
    except (OSError, struct.error, ValueError, EOFError) as exc:
        found.notes.append(f"the file's metadata is malformed ({_short(exc)}): read only as far as it is intact")
    return _decide(found, _check_c2pa(open_file) if found.manifest else None)


def headline_prefix(prov: dict | None) -> str | None:
    """'Declared AI-generated — C2PA, signed by …' for a file that declares AI generation or AI
    edits (the verdict's headline starts with it); None otherwise."""
    if not prov or prov.get("declared") not in ("ai_generated", "ai_edited"):
        return None
    return f"Declared {_DECLARED_WORDS[prov['declared']]} — {_where(prov)}"


def declared_first(headline):
    """Decorates a result's `headline` property: when its file declares AI generation or AI edits,
    the headline says so first, then what the pixels say."""
    @functools.wraps(headline)
    def wrapper(result) -> str:
        prefix = None if result.error else headline_prefix(result.provenance)
        return f"{prefix} · Pixels: {headline(result)}" if prefix else headline(result)

    return wrapper


def describe_markdown(prov: dict | None) -> str:
    """The Provenance panel: what the file declares, how far its signature goes, and the caveat."""
    if prov is None:
        return f"**Provenance:** not read for this input (only uploaded files carry metadata).\n\n_{CAVEAT}_"
    lines = []
    declared = prov.get("declared")
    if declared:
        lines.append(f"**Declared {_DECLARED_WORDS[declared]}** — {_where(prov)}.")
    elif prov.get("c2pa"):
        lines.append("**Nothing declared** about whether AI or a camera made this file.")
    else:
        lines.append("**Nothing declared:** no Content Credentials (C2PA), IPTC digital source type, "
                     "generator settings or generator name in EXIF say how this file was made.")
    if prov.get("generator"):
        lines.append(f"Generator: {prov['generator']}.")
    c2pa = prov.get("c2pa")
    if c2pa and c2pa.get("present") and prov.get("source") != "c2pa":  # a manifest that did not decide
        signer = f" signed by {c2pa['issuer']}" if c2pa.get("issuer") else ""
        lines.append(f"C2PA manifest{signer}: {_c2pa_status(c2pa)}.")
    if c2pa and c2pa.get("actions"):
        lines.append("C2PA actions: " + ", ".join(c2pa["actions"]) + ".")
    text = "\n\n".join(lines)
    if prov.get("notes"):
        text += "\n\n" + "\n".join(f"- {n}" for n in prov["notes"])
    return f"{text}\n\n_{CAVEAT}_"


def summary(prov: dict | None) -> str:
    """One short cell for a table or CSV: 'ai_generated (c2pa)', 'camera (xmp:DigitalSourceType)' or ''."""
    if not prov or not prov.get("declared"):
        return ""
    return f"{prov['declared']} ({prov['source']})"


_DECLARED_WORDS = {"ai_generated": "AI-generated", "ai_edited": "AI-edited", "camera": "a camera capture"}


def _c2pa_status(c2pa: dict) -> str:
    """How far a C2PA manifest's signature can be believed, in a few words."""
    if not c2pa.get("valid"):  # the notes say why
        return "the manifest does not verify: altered after signing, or damaged"
    if c2pa.get("trusted"):
        return "signature valid, issuer on the configured trust list"
    return "signed, issuer not on a trust list"


def _where(prov: dict) -> str:
    """The deciding declaration, as a reader would name it: 'C2PA, signed by Acme (...)'."""
    source = prov.get("source") or ""
    c2pa = prov.get("c2pa")
    if source == "c2pa" and c2pa:
        signer = f", signed by {c2pa['issuer']}" if c2pa.get("issuer") else ""
        return f"C2PA{signer} ({_c2pa_status(c2pa)})"
    if source.startswith("xmp:"):
        return "IPTC digital source type in the file's XMP"
    if source == "png:Software":
        return "the PNG's Software text naming a generator"
    if source.startswith("png:"):
        return f"generator settings in the PNG's '{source[4:]}' text chunk"
    if source.startswith("exif:"):
        return "the EXIF Software tag naming a generator"
    return source or "metadata"


# -- walking the file ----------------------------------------------------------------------------
def _walk(f, found: _Found) -> None:
    head = f.read(16)
    if head.startswith(b"\xff\xd8\xff"):
        _walk_jpeg(f, found)
    elif head.startswith(_PNG_MAGIC):
        _walk_png(f, found)
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        _walk_webp(f, found)
    elif head[4:8] == b"ftyp":
        _walk_bmff(f, found)
    else:
        found.notes.append("provenance is read from JPEG, PNG, WebP, HEIF/AVIF and MP4/MOV files; "
                           "this file's metadata was not read")


def _parts(found: _Found, what: str):
    """Counts the parts walked; past MAX_PARTS, a note and the walk stops."""
    for n in range(MAX_PARTS):
        yield n
    found.notes.append(f"the file has more than {MAX_PARTS:,} {what}: metadata after them was not read")


def _walk_jpeg(f, found: _Found) -> None:
    f.seek(2)
    for _ in _parts(found, "JPEG segments"):
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return
        kind = marker[1]
        if kind == 0xFF:  # fill byte before a marker
            f.seek(-1, 1)
            continue
        if kind in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            continue
        if kind in (0xD9, 0xDA):  # end of image, start of scan: no metadata after this
            return
        (length,) = struct.unpack(">H", _exactly(f, 2))
        payload = length - 2
        if payload < 0:
            raise ValueError(f"a JPEG segment declares a length of {length}")
        if kind == 0xE1:  # APP1: EXIF or XMP
            data = _exactly(f, payload)
            if data.startswith(b"Exif\x00\x00"):
                _exif_software(data, found)
            elif data.startswith(_XMP_JPEG):
                found.xmp = data[len(_XMP_JPEG):]
        elif kind == 0xEB:  # APP11: JPEG XT boxes, where C2PA keeps its JUMBF manifest store
            data = f.read(payload)  # a truncated store is still a store: the C2PA check says what is wrong
            found.manifest = found.manifest or (data[:2] == b"JP" and b"jumb" in data[:16])
            if len(data) < payload:
                raise EOFError("the file ends inside a metadata block")
        else:
            f.seek(payload, 1)


def _walk_png(f, found: _Found) -> None:
    f.seek(8)
    for _ in _parts(found, "PNG chunks"):
        header = f.read(8)
        if len(header) < 8:
            return
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND":
            return
        if kind in (b"tEXt", b"zTXt", b"iTXt", b"eXIf") and length > MAX_CHUNK_BYTES:
            found.notes.append(f"a PNG {kind.decode()} chunk of {length / 1e6:.0f} MB was skipped unread")
        elif kind in (b"tEXt", b"zTXt", b"iTXt"):
            _png_text(kind, _exactly(f, length), found)
            length = 0
        elif kind == b"eXIf":
            _exif_software(_exactly(f, length), found)
            length = 0
        elif kind == b"caBX":  # the chunk C2PA keeps its manifest store in
            found.manifest = True
        f.seek(length + 4, 1)  # the data (unless read) and the CRC


def _png_text(kind: bytes, data: bytes, found: _Found) -> None:
    keyword, _, rest = data.partition(b"\x00")
    name = keyword.decode("latin-1")
    if kind == b"tEXt":
        text = rest.decode("latin-1")
    elif kind == b"zTXt":
        text = _inflate(rest[1:], name, found).decode("latin-1")
    else:  # iTXt: compressed flag, method, language\0, translated keyword\0, UTF-8 text
        compressed, rest = rest[:1] == b"\x01", rest[2:]
        rest = rest.split(b"\x00", 2)[-1]
        raw = _inflate(rest, name, found) if compressed else rest
        if name == "XML:com.adobe.xmp":
            found.xmp = raw
            return
        text = raw.decode("utf-8", "replace")
    found.texts[name] = text


def _inflate(data: bytes, name: str, found: _Found) -> bytes:
    """A text chunk's zlib data, inflated to at most MAX_TEXT_BYTES (a few kB can inflate to GBs)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_TEXT_BYTES)
    except zlib.error as exc:
        found.notes.append(f"the PNG text chunk '{name}' is not valid compressed data ({_short(exc)}): ignored")
        return b""
    if inflater.unconsumed_tail:
        found.notes.append(f"the PNG text chunk '{name}' inflates to more than {MAX_TEXT_BYTES >> 20} MB: "
                           f"only its first {MAX_TEXT_BYTES >> 20} MB was read")
    return out


def _walk_webp(f, found: _Found) -> None:
    f.seek(12)
    for _ in _parts(found, "WebP chunks"):
        header = f.read(8)
        if len(header) < 8:
            return
        kind, length = struct.unpack("<4sI", header)
        padded = length + (length & 1)
        if kind in (b"EXIF", b"XMP ") and length <= MAX_CHUNK_BYTES:
            data = _exactly(f, length)
            f.seek(padded - length, 1)
            if kind == b"XMP ":
                found.xmp = data
            else:
                _exif_software(data, found)
            continue
        found.manifest = found.manifest or kind == b"C2PA"
        f.seek(padded, 1)


def _walk_bmff(f, found: _Found) -> None:
    """Top-level boxes of an ISO base media file (HEIF, AVIF, MP4, MOV): only their headers are read."""
    end = f.seek(0, 2)
    offset = 0
    for _ in _parts(found, "top-level boxes"):
        if offset + 8 > end:
            return
        f.seek(offset)
        size, kind = struct.unpack(">I4s", _exactly(f, 8))
        start = 8
        if size == 1:
            (size,), start = struct.unpack(">Q", _exactly(f, 8)), 16
        elif size == 0:  # runs to the end of the file
            size = end - offset
        if size < start:
            raise ValueError(f"a box header at byte {offset} is inconsistent")
        if kind == b"uuid" and size >= start + 16:
            box_id = _exactly(f, 16)
            found.manifest = found.manifest or box_id == _C2PA_UUID
            if box_id == _XMP_UUID and size - start - 16 <= MAX_XMP_BYTES:
                found.xmp = _exactly(f, size - start - 16)
        offset += size


def _exactly(f, n: int) -> bytes:
    data = f.read(n)
    if len(data) < n:
        raise EOFError("the file ends inside a metadata block")
    return data


def _exif_software(tiff: bytes, found: _Found) -> None:
    """EXIF's Software tag (0x0131) from the first image directory of its TIFF structure."""
    tiff = tiff[6:] if tiff.startswith(b"Exif\x00\x00") else tiff  # JPEG's prefix, which some writers keep
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        found.notes.append("the EXIF block is malformed (no byte order mark): ignored")
        return
    try:
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
        for i in range(min(count, 1000)):
            tag, kind, n, value = struct.unpack(order + "HHI4s", tiff[ifd + 2 + 12 * i: ifd + 14 + 12 * i])
            if tag == 0x0131 and kind == 2:  # ASCII
                if n > 4:
                    (at,) = struct.unpack(order + "I", value)
                    value = tiff[at:at + min(n, 1024)]
                text = value[:n].split(b"\x00")[0].decode("utf-8", "replace").strip()
                if text:
                    found.software = ("exif:Software", text)
                return
    except struct.error:
        found.notes.append("the EXIF block is malformed (its directory runs past its end): ignored")


# -- what the metadata says ----------------------------------------------------------------------
def _xmp_fields(xmp: bytes, notes: list[str]) -> tuple[str | None, str | None, str | None]:
    """(IPTC digital source type, CreatorTool, remote C2PA manifest URL) from an XMP packet."""
    if len(xmp) > MAX_XMP_BYTES:
        notes.append(f"the XMP metadata is {len(xmp) / 1e6:.1f} MB; over {MAX_XMP_BYTES >> 20} MB is not parsed")
        return None, None, None
    if b"<!DOCTYPE" in xmp or b"<!ENTITY" in xmp:  # XMP never needs one; entities can expand without bound
        notes.append("the XMP metadata declares a DOCTYPE or entities, which XMP never uses: not parsed")
        return None, None, None
    try:
        root = ET.fromstring(xmp.rstrip(b"\x00 \t\r\n"))
    except ET.ParseError as exc:
        notes.append(f"the XMP metadata is malformed XML ({exc}): ignored")
        return None, None, None
    values: dict[str, str] = {}
    for element in root.iter():
        pairs = [(element.tag, (element.text or "").strip())] + list(element.attrib.items())
        resource = next((v for k, v in element.attrib.items() if k.endswith("}resource")), None)
        if resource:
            pairs.append((element.tag, resource))
        for key, value in pairs:
            local = key.rsplit("}", 1)[-1]
            if value and local in ("DigitalSourceType", "CreatorTool", "provenance"):
                values.setdefault(local, value)
    source_type = values.get("DigitalSourceType")
    return (source_type.rstrip("/").rsplit("/", 1)[-1] if source_type else None,
            values.get("CreatorTool"), values.get("provenance"))


def _png_generator(texts: dict[str, str]) -> tuple[str, str] | None:
    """(deciding chunk, generator) for the generator settings image tools write into PNG text chunks."""
    params = texts.get("parameters", "")
    if "fooocus_scheme" in texts or '"Fooocus' in params:
        return "png:parameters" if params else "png:fooocus_scheme", "Fooocus"
    if "Steps:" in params and ("Sampler:" in params or "Seed:" in params):
        version = re.search(r"\bVersion: ([^,\n]+)", params)
        model = re.search(r"\bModel: ([^,\n]+)", params)
        name = "Stable Diffusion WebUI" + (f" {version.group(1)}" if version else "")
        return "png:parameters", name + (f", model {model.group(1)}" if model else "")
    if '"class_type"' in texts.get("prompt", ""):
        return "png:prompt", "ComfyUI"
    if '"nodes"' in texts.get("workflow", ""):
        return "png:workflow", "ComfyUI"
    for key in ("invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream"):
        if key in texts:
            version = re.search(r'"app_version"\s*:\s*"([^"]{1,40})"', texts[key])
            return f"png:{key}", "InvokeAI" + (f" {version.group(1)}" if version else "")
    if texts.get("Software", "").strip().lower().startswith("novelai"):
        model = texts.get("Source", "").strip()
        return "png:Software", "NovelAI" + (f" ({model[:80]})" if model else "")
    return None


def _decide(found: _Found, checked: _Checked | None) -> dict:
    """Which declaration decides, by precedence: C2PA, XMP, PNG generator settings, Software tags."""
    notes = found.notes + (checked.notes if checked else [])
    c2pa = checked.report if checked else None
    source_type, creator, remote = _xmp_fields(found.xmp, notes) if found.xmp else (None, None, None)
    if remote and c2pa is None:  # C2PA's reference to a manifest not embedded in the file
        c2pa = _remote(remote, notes).report
    png = _png_generator(found.texts)
    software = found.software or (("png:Software", found.texts["Software"]) if "Software" in found.texts else None)
    named = software if software and _GENERATORS.search(software[1]) else None
    declared = source = generator = None
    if checked and checked.declared:
        declared, source, generator = checked.declared, "c2pa", checked.generator
    elif source_type in _SOURCE_TYPES:
        declared, source, generator = _SOURCE_TYPES[source_type], "xmp:DigitalSourceType", creator
    elif png:
        declared, (source, generator) = "ai_generated", png
    elif named:
        declared, source, generator = "ai_generated", named[0], named[1][:120]
    if source_type and source_type not in _SOURCE_TYPES:
        notes.append(f"the XMP gives the IPTC digital source type '{source_type[:80]}', which says neither "
                     f"AI nor camera")
    return {"declared": declared, "source": source, "generator": generator, "c2pa": c2pa, "notes": notes}


# -- C2PA ------------------------------------------------------------------------------------------
@dataclass
class _Checked:
    """A C2PA check's outcome: the public `c2pa` entry, what the manifest declares, and notes."""
    report: dict
    declared: str | None = None
    generator: str | None = None
    notes: list[str] = field(default_factory=list)


def _check_c2pa(open_file) -> _Checked | None:
    """The embedded C2PA manifest checked by c2pa-python on a thread of its own, for at most
    C2PA_TIME_LIMIT_S; None when the library finds no manifest after all."""
    outcome: dict = {}

    def run():
        try:
            with open_file() as f:
                outcome["checked"] = _c2pa_report(f)
        except Exception as exc:  # noqa: BLE001 - any failure of the library is a note, never a traceback
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="c2pa-check", daemon=True)
    worker.start()
    worker.join(C2PA_TIME_LIMIT_S)
    if worker.is_alive():  # left to finish on its own: a native call cannot be interrupted
        return _unreadable(f"checking the C2PA manifest took more than {C2PA_TIME_LIMIT_S:.0f} s: abandoned")
    if "error" in outcome:
        return _c2pa_failure(outcome["error"])
    return outcome["checked"]


def _unreadable(note: str, present: bool = True) -> _Checked:
    return _Checked({"present": present, "valid": False, "trusted": False, "issuer": None, "claim_generator": None,
                     "actions": [], "problems": []}, notes=[note])


def _remote(url: str, notes: list[str]) -> _Checked:
    """A manifest the file only points to: reported, never fetched."""
    checked = _unreadable(f"the file's C2PA manifest is kept elsewhere ({url[:200]}): not fetched, this server "
                          f"fetches nothing", present=False)
    notes += checked.notes
    return checked


def _c2pa_failure(exc: BaseException) -> _Checked | None:
    if isinstance(exc, (ImportError, OSError)) and not isinstance(exc, FileNotFoundError):
        return _unreadable(f"C2PA manifests cannot be checked here: the c2pa-python library did not load "
                           f"({_short(exc)})")
    text = str(exc)
    if text.startswith("ManifestNotFound"):  # JUMBF boxes of some other standard
        return None
    if text.startswith("Remote:"):
        return _remote(text.rsplit(" ", 1)[-1], [])
    log.info("C2PA manifest unreadable: %s", text[:300])
    return _unreadable(f"the C2PA manifest could not be read: it is truncated or damaged ({text[:160]})")


@functools.lru_cache(maxsize=4)
def _context(anchors_path: str | None):
    """The library's settings: fetch nothing; trust what DEEPFAKE_C2PA_TRUST_ANCHORS names, if anything.
    Returns (context, note about the trust list or None)."""
    import c2pa

    settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": True},
                "core": {"allowed_network_hosts": [], "max_decompressed_manifest_size_in_mb": C2PA_MAX_MANIFEST_MB}}
    note = None
    if anchors_path:
        try:
            pem = Path(anchors_path).read_text(encoding="ascii")
            if "BEGIN CERTIFICATE" not in pem:
                raise ValueError("no PEM certificate in it")
            return c2pa.Context.from_dict({**settings, "trust": {"trust_anchors": pem}}), None
        except (OSError, ValueError, c2pa.C2paError) as exc:
            note = (f"{TRUST_ANCHORS_ENV} names {anchors_path}, which could not be used ({_short(exc)}): "
                    f"no trust list was applied")
            log.warning("%s", note)
    return c2pa.Context.from_dict(settings), note


def _c2pa_report(f) -> _Checked:
    import c2pa

    context, trust_note = _context(os.environ.get(TRUST_ANCHORS_ENV) or None)
    with c2pa.Reader(None, f, context=context) as reader:
        store = json.loads(reader.json())
        state = reader.get_validation_state()
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    signature = manifest.get("signature_info") or {}
    actions = [a for assertion in manifest.get("assertions", [])
               if assertion.get("label", "").startswith("c2pa.actions")
               for a in (assertion.get("data") or {}).get("actions", []) if isinstance(a, dict)]
    claim_generator = manifest.get("claim_generator") or _agent(manifest.get("claim_generator_info"))
    declared, generator = None, None
    for action in actions:
        source_type = str(action.get("digitalSourceType") or "").rstrip("/").rsplit("/", 1)[-1]
        claim = _SOURCE_TYPES.get(source_type)
        if claim == "ai_generated" and action.get("action") not in _CREATED:
            claim = "ai_edited"  # generative AI used on an existing picture
        if claim and _RANK[claim] > _RANK.get(declared, 0):
            declared, generator = claim, _agent(action.get("softwareAgent")) or claim_generator
    problems = [s["code"] for s in store.get("validation_status") or [] if s.get("code")]
    report = {"present": True, "valid": state in ("Valid", "Trusted"), "trusted": state == "Trusted",
              "issuer": signature.get("issuer") or signature.get("common_name"),
              "claim_generator": claim_generator, "actions": [str(a.get("action")) for a in actions],
              "problems": problems}
    notes = [trust_note] if trust_note else []
    if not report["valid"]:
        failures = ", ".join(code for code in problems if code != "signingCredential.untrusted") or "no code given"
        notes.append(f"the C2PA manifest does not verify ({failures}): the file or its manifest was altered "
                     f"after signing, or is damaged")
    return _Checked(report, declared, generator, notes)


def _agent(agent) -> str | None:
    """'Name version' from a C2PA software agent or claim generator entry (a string, a dict or a list)."""
    if isinstance(agent, list):
        agent = agent[0] if agent else None
    if isinstance(agent, dict):
        return " ".join(str(agent[k]) for k in ("name", "version") if agent.get(k)) or None
    return str(agent) if agent else None


def _short(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:160] or type(exc).__name__

"""What a file declares about how it was made, read from its metadata before any pixel is scored.

Every answer (Detect, /predict, /predict_batch, /predict_video, the CLI) carries it as `provenance`:

    {"declared": "ai_generated" | "ai_edited" | "camera" | None,
     "source": the declaration that decided ("c2pa", "xmp:DigitalSourceType", "png:parameters", ...) or None,
     "generator": the generator's name/version or None,
     "c2pa": {"present", "valid", "trusted", "issuer", "claim_generator", "actions", "problems"} or None,
     "notes": [plain-language remarks]}

A declaration is the file's word, not evidence: metadata can be stripped or forged, so a file
that declares nothing proves nothing. The pixel score never depends on it.
"""

from __future__ import annotations

CAVEAT = ("Metadata can be stripped or forged: a file that declares nothing proves nothing, and a declaration "
          "is only as trustworthy as its signature. The verdict above comes from the pixels alone.")

_DECLARED_WORDS = {"ai_generated": "AI-generated", "ai_edited": "AI-edited", "camera": "a camera capture"}


def _c2pa_status(c2pa: dict) -> str:
    """How far a C2PA manifest's signature can be believed, in a few words."""
    if not c2pa.get("valid"):
        codes = ", ".join(c2pa.get("problems") or []) or "no detail"
        return f"the manifest does not verify: altered after signing, or damaged ({codes})"
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
    if source.startswith("png:"):
        return f"generator settings in the PNG's '{source[4:]}' text chunk"
    if source.startswith("exif:"):
        return "the EXIF Software tag"
    return source or "metadata"


def headline_prefix(prov: dict | None) -> str | None:
    """'Declared AI-generated — C2PA, signed by …' for a file that declares AI generation or AI
    edits (the verdict's headline starts with it); None otherwise."""
    if not prov or prov.get("declared") not in ("ai_generated", "ai_edited"):
        return None
    return f"Declared {_DECLARED_WORDS[prov['declared']]} — {_where(prov)}"


def describe_markdown(prov: dict | None) -> str:
    """The Provenance panel: what the file declares, how far its signature goes, and the caveat."""
    if prov is None:
        return f"**Provenance:** not read for this input (only uploaded files carry metadata).\n\n_{CAVEAT}_"
    lines = []
    declared = prov.get("declared")
    if declared:
        lines.append(f"**Declared {_DECLARED_WORDS[declared]}** — {_where(prov)}.")
    else:
        lines.append("**Nothing declared:** no Content Credentials (C2PA), IPTC digital source type, "
                     "generator settings or generator name in EXIF say how this file was made.")
    if prov.get("generator"):
        lines.append(f"Generator: {prov['generator']}.")
    c2pa = prov.get("c2pa")
    if c2pa and prov.get("source") != "c2pa":  # a manifest that did not decide is still worth naming
        signer = f" signed by {c2pa['issuer']}" if c2pa.get("issuer") else ""
        lines.append(f"C2PA manifest{signer}: {_c2pa_status(c2pa)}.")
    if c2pa and c2pa.get("actions"):
        lines.append("C2PA actions: " + ", ".join(c2pa["actions"]) + ".")
    text = "\n\n".join(lines)
    if prov.get("notes"):
        text += "\n\n" + "\n".join(f"- {n}" for n in prov["notes"])
    return f"{text}\n\n_{CAVEAT}_"

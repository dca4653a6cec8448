"""Files that declare how they were made, made here: C2PA manifests signed with a throwaway ES256
certificate chain, Stable Diffusion / ComfyUI / InvokeAI / NovelAI PNGs, IPTC XMP in a JPEG, EXIF
Software, and hostile metadata. Used by test_provenance.py and benchmarks/bench_inference.py."""

from __future__ import annotations

import datetime
import functools
import io
import struct
import zlib

import numpy as np
from PIL import Image

ORG = "Throwaway Test Org"  # the signing certificate's organisation: what the reader reports as issuer
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "AVIF": "image/avif"}


def picture(fmt: str = "JPEG", size: int = 96, seed: int = 0, **save) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **save)
    return buf.getvalue()


@functools.lru_cache(maxsize=1)
def certificates() -> tuple[bytes, bytes, bytes]:
    """(signing chain PEM: end entity then root, the end entity's private key PEM, the root PEM),
    made afresh each test session; the root is on no trust list."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG)])

    now = datetime.datetime.now(datetime.timezone.utc)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def issued(subject, public, ca: bool):
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name("Throwaway Root CA"))
             .public_key(public).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))
        if ca:
            b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        else:  # what C2PA asks of a claim signer: digital signature, an allowed extended key usage
            b = (b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
                 .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                                critical=False))
        return b.sign(root_key, hashes.SHA256())

    root = issued("Throwaway Root CA", root_key.public_key(), ca=True)
    leaf = issued("Throwaway Signer", key.public_key(), ca=False)
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return leaf.public_bytes(pem) + root.public_bytes(pem), key_pem, root.public_bytes(pem)


def sign(data: bytes, mime: str = "image/jpeg", actions=(("c2pa.created", "trainedAlgorithmicMedia"),),
         generator: str = "TestGen", remote_url: str | None = None) -> bytes:
    """`data` with a C2PA manifest whose actions are (action, IPTC digital source type) pairs, signed
    ES256 by the throwaway chain (no timestamp authority: nothing is fetched). With `remote_url`, the
    manifest is not embedded and the file only points there."""
    import c2pa

    chain, key, _ = certificates()
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))
    manifest = {"claim_generator_info": [{"name": generator, "version": "1.0"}],
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": action, "digitalSourceType": IPTC + source,
                     "softwareAgent": {"name": generator, "version": "1.0"}} for action, source in actions]}}]}
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    out = io.BytesIO()
    with c2pa.Builder(manifest, context) as builder:
        if remote_url:
            builder.set_no_embed()
            builder.set_remote_url(remote_url)
        builder.sign(signer, mime, io.BytesIO(data), out)
    return out.getvalue()


# -- JPEG segments -------------------------------------------------------------------------------------
def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of each segment before the scan; the scan and the rest follow as (0xDA, rest)."""
    out, offset = [], 2
    while data[offset + 1] != 0xDA:
        marker, (length,) = data[offset + 1], struct.unpack(">H", data[offset + 2:offset + 4])
        out.append((marker, data[offset + 4:offset + 2 + length]))
        offset += 2 + length
    return out + [(0xDA, data[offset:])]


def jpeg_from_segments(segments: list[tuple[int, bytes]]) -> bytes:
    head = b"".join(b"\xff" + bytes([m]) + struct.pack(">H", len(p) + 2) + p for m, p in segments[:-1])
    return b"\xff\xd8" + head + segments[-1][1]


def with_jpeg_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """A JPEG with one more segment right after SOI."""
    return jpeg_from_segments([(marker, payload)] + jpeg_segments(data))


def xmp_packet(body: str) -> bytes:
    return (f'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">{body}</rdf:RDF></x:xmpmeta>'
            f'<?xpacket end="w"?>').encode()


def iptc_description(source_type: str, creator: str | None = None, as_attribute: bool = False) -> str:
    """An rdf:Description giving the IPTC digital source type, as an attribute or as an element."""
    ns = ('xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
          'xmlns:xmp="http://ns.adobe.com/xap/1.0/"')
    tool = f' xmp:CreatorTool="{creator}"' if creator else ""
    if as_attribute:
        return f'<rdf:Description rdf:about="" {ns}{tool} Iptc4xmpExt:DigitalSourceType="{IPTC}{source_type}"/>'
    return (f'<rdf:Description rdf:about="" {ns}{tool}><Iptc4xmpExt:DigitalSourceType>{IPTC}{source_type}'
            f'</Iptc4xmpExt:DigitalSourceType></rdf:Description>')


def xmp_jpeg(xmp: bytes, data: bytes | None = None) -> bytes:
    return with_jpeg_segment(data or picture(), 0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp)


def exif_jpeg(software: str) -> bytes:
    exif = Image.Exif()
    exif[0x0131] = software
    return picture(exif=exif.tobytes())


# -- PNG chunks ------------------------------------------------------------------------------------------
def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_with(*chunks: bytes, data: bytes | None = None) -> bytes:
    """A PNG with extra chunks right after IHDR (where generators put their text)."""
    data = data or picture("PNG")
    return data[:33] + b"".join(chunks) + data[33:]


def text(keyword: str, value: str) -> bytes:
    return png_chunk(b"tEXt", keyword.encode("latin-1") + b"\x00" + value.encode("latin-1"))


def ztext(keyword: str, value: bytes) -> bytes:
    return png_chunk(b"zTXt", keyword.encode("latin-1") + b"\x00\x00" + zlib.compress(value, 9))


def itext(keyword: str, value: bytes, compressed: bool = False) -> bytes:
    body = zlib.compress(value, 9) if compressed else value
    return png_chunk(b"iTXt", keyword.encode("latin-1") + b"\x00" + bytes([compressed, 0]) + b"\x00\x00" + body)


A1111 = ("a portrait photo of a woman, 85mm\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M Karras, "
         "CFG scale: 7, Seed: 1234, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
         "Version: v1.10.1")
COMFY_PROMPT = '{"3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20}}}'
COMFY_WORKFLOW = '{"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}]}'
INVOKE = '{"app_version": "4.2.9", "generation_mode": "txt2img", "positive_prompt": "a face"}'

"""Signed and declared test photos, made by the tests themselves from the bundled examples.

A test certificate chain (a root CA and an ES256 signing certificate with the e-mail-protection
usage that C2PA asks for) is generated with ``cryptography``; c2pa-python's Builder signs small
copies of ``assets/examples/`` with it. Nothing here goes to the network (no time-stamp
authority: the signatures carry no time stamp).
"""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
#: No thumbnail in the manifest (keeps the files small) and no network during signing.
BUILD_SETTINGS = {"version": 1, "builder": {"thumbnail": {"enabled": False}},
                  "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_after_sign": False}}


@dataclass(frozen=True)
class TestChain:
    root_pem: bytes
    chain_pem: bytes  # the signing certificate, then the root
    key_pem: bytes


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wsloc tests")])


def make_chain(signer_name: str = "wsloc test signer", valid_days: tuple[int, int] = (-1, 365)) -> TestChain:
    """A root CA and a signing certificate valid from ``valid_days[0]`` to ``valid_days[1]`` days
    from now (a negative end makes an expired one)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.timezone.utc)
    usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
                 encipher_only=False, decipher_only=False)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder().subject_name(_name("wsloc test root")).issuer_name(_name("wsloc test root"))
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=400)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, **usage),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(_name(signer_name)).issuer_name(root.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=valid_days[0]))
            .not_valid_after(now + datetime.timedelta(days=valid_days[1]))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **usage),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return TestChain(root.public_bytes(pem), leaf.public_bytes(pem) + root.public_bytes(pem),
                     key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def small_jpeg(example: str = "spliced_boat.jpg", size: int = 320, xmp: bytes | None = None,
               exif: Image.Exif | None = None) -> bytes:
    """A small JPEG copy of a bundled example (optionally with XMP and EXIF)."""
    image = Image.open(EXAMPLES / example).convert("RGB")
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    options = {"quality": 90}
    if xmp is not None:
        options["xmp"] = xmp
    if exif is not None:
        options["exif"] = exif.tobytes()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def action(name: str, source_type: str | None = None, agent: str | None = None) -> dict:
    found = {"action": name}
    if source_type:
        found["digitalSourceType"] = IPTC + source_type
    if agent:
        found["softwareAgent"] = {"name": agent}
    return found


def sign(data: bytes, chain: TestChain, actions: list[dict], generator: str = "Adobe Photoshop",
         ingredient: tuple[str, bytes] | None = None, mime: str = "image/jpeg") -> bytes:
    """``data`` signed with a manifest of ``actions``, claim generator ``generator`` and, when
    given, one parent ingredient ``(title, bytes)``."""
    import c2pa

    manifest = {"claim_generator_info": [{"name": generator, "version": "1.0"}], "title": "photo.jpg",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}]}
    context = c2pa.Context.from_dict(BUILD_SETTINGS)
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg=b"es256", sign_cert=chain.chain_pem,
                                                       private_key=chain.key_pem, ta_url=None))
    with c2pa.Builder(manifest, context=context) as builder:
        if ingredient is not None:
            title, ingredient_bytes = ingredient
            builder.add_ingredient({"title": title, "relationship": "parentOf"}, mime, io.BytesIO(ingredient_bytes))
        out = io.BytesIO()
        builder.sign(signer, mime, io.BytesIO(data), out)
    return out.getvalue()


def changed_after_signing(signed: bytes) -> bytes:
    """The signed file with one byte of its image data flipped (the pixels no longer match)."""
    changed = bytearray(signed)
    changed[-200] ^= 0x55
    return bytes(changed)


def stripped(signed: bytes) -> bytes:
    """The signed photo decoded and saved again, as a platform does: the credentials are gone."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(signed)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def xmp_packet(**fields: str) -> bytes:
    """An XMP packet with the given attributes (``prefix_Name="value"``: e.g. ``xmp_CreatorTool``,
    ``Iptc4xmpExt_DigitalSourceType``, ``dcterms_provenance``, ``photoshop_History``), values
    XML-escaped."""
    from xml.sax.saxutils import quoteattr

    attributes = " ".join(f"{key.replace('_', ':', 1)}={quoteattr(value)}" for key, value in fields.items())
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            'xmlns:dcterms="http://purl.org/dc/terms/" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" '
            f'{attributes}/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode("utf-8")


def iptc_datasets(fields: dict[tuple[int, int], str | list[str]]) -> bytes:
    """IPTC IIM datasets (record 2 is "Application2": (2, 120) the caption, (2, 80) the by-line, a
    list for a repeated dataset), UTF-8, with the record version (2, 0) first."""
    out = b"\x1c\x02\x00\x00\x02\x00\x04"
    for (record, number), values in fields.items():
        for value in values if isinstance(values, list) else [values]:
            data = value.encode("utf-8")
            out += bytes([0x1C, record, number]) + len(data).to_bytes(2, "big") + data
    return out


def with_iptc(jpeg: bytes, datasets: bytes) -> bytes:
    """``jpeg`` with an APP13 "Photoshop 3.0" segment holding ``datasets`` as its IPTC resource
    (8BIM 0x0404), as Photoshop and exiv2 write it, right after the start-of-image marker."""
    resource = b"8BIM\x04\x04\x00\x00" + len(datasets).to_bytes(4, "big") + datasets + b"\x00" * (len(datasets) % 2)
    body = b"Photoshop 3.0\x00" + resource
    return jpeg[:2] + b"\xff\xed" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]


def raw_profile(name: str, data: bytes) -> str:
    """ImageMagick's PNG text form of a metadata block ("Raw profile type NAME"): a blank line, the
    name, the length, then the bytes in hex, 36 bytes a line."""
    lines = [data[i: i + 36].hex() for i in range(0, len(data), 36)]
    return f"\n{name}\n{len(data):8d}\n" + "\n".join(lines) + "\n"


def xmp_document(description: str, namespaces: str = "") -> bytes:
    """An XMP packet whose rdf:Description has ``description`` inside it (elements) and the usual
    namespaces declared (xmp, xmpMM, stEvt, photoshop, dc, Iptc4xmpExt, dcterms, plus
    ``namespaces``)."""
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" '
            'xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#" '
            'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:dcterms="http://purl.org/dc/terms/" '
            f'{namespaces}>{description}</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode("utf-8")

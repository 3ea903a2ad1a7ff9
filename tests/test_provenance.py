"""Provenance: Content Credentials read and validated with c2pa-python, the file's own declarations
and metadata read with Pillow (EXIF, IPTC, ICC) and defusedxml (XMP), said in plain words beside the
verdict, with every file string kept as text.

The signed photos are made here (tests/provenance_fixtures.py) with a certificate chain these
tests generate; none of them goes to the network, and the remote-manifest test checks that
against a local server that records every request."""

from __future__ import annotations

import csv
import http.server
import io
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("c2pa")

from PIL import Image, PngImagePlugin  # noqa: E402

from tests.provenance_fixtures import (IPTC, action, changed_after_signing, iptc_datasets, make_chain,  # noqa: E402
                                       raw_profile, sign, small_jpeg, stripped, with_iptc, xmp_document,
                                       xmp_packet)
from wsloc_runtime import provenance as prov  # noqa: E402
from wsloc_runtime.outputs import csv_cells, row_from_payload  # noqa: E402
from wsloc_runtime.safe_text import csv_text, html_text, markdown_text, terminal_text  # noqa: E402


@pytest.fixture(scope="module")
def chain():
    return make_chain()


@pytest.fixture(scope="module")
def signed(chain):
    """The test set: each case a file's bytes."""
    base = small_jpeg()
    files = {
        "camera": sign(base, chain, [action("c2pa.created", "digitalCapture")], generator="Test Camera"),
        "generated": sign(base, chain, [action("c2pa.created", "trainedAlgorithmicMedia", "Firefly")],
                          generator="Adobe Firefly"),
        "filled": sign(small_jpeg("copymove_hats.jpg"), chain,
                       [action("c2pa.edited", "compositeWithTrainedAlgorithmicMedia", "Generative Fill")],
                       generator="Adobe Photoshop", ingredient=("beach.jpg", base)),
    }
    files["changed"] = changed_after_signing(files["camera"])
    files["stripped"] = stripped(files["generated"])
    files["xmp_only"] = small_jpeg(xmp=xmp_packet(Iptc4xmpExt_DigitalSourceType=IPTC + "trainedAlgorithmicMedia",
                                                  xmp_CreatorTool="Midjourney"))
    return files


def test_fixtures_stay_small(signed):
    assert all(len(data) < 200_000 for data in signed.values())


def test_valid_credentials_name_the_signer_and_never_say_verified(signed):
    found = prov.read_provenance(signed["camera"])
    credentials = found["credentials"]
    assert credentials["readable"] and credentials["signature_valid"] and credentials["hash_matches"] is True
    assert credentials["trusted"] is None and credentials["claim_generator"] == "Test Camera 1.0"
    assert credentials["signer"]["name"] == "wsloc test signer" and credentials["signer"]["time"] is None
    assert credentials["actions"][0]["digital_source_type"]["term"] == "digitalCapture"
    statement = found["statement"]
    assert statement.startswith("It carries Content Credentials written by Test Camera 1.0, signed by wsloc test signer")
    assert "signature valid" in statement and "signer not checked against a trust list" in statement
    assert "verified" not in statement and not found["generative_ai_declared"]


def test_a_trust_list_checks_the_signer(signed, chain):
    trusted = prov.read_provenance(signed["camera"], chain.root_pem.decode())
    assert trusted["credentials"]["trusted"] is True and "signer on the trust list given" in trusted["statement"]
    other = prov.read_provenance(signed["camera"], make_chain().root_pem.decode())
    assert other["credentials"]["trusted"] is False and "signer NOT on the trust list given" in other["statement"]


def test_generated_photo_is_said_first_as_a_claim(signed):
    found = prov.read_provenance(signed["generated"])
    assert found["credentials"]["generative_ai"] == "created" and found["generative_ai_declared"]
    assert found["statement"].startswith("Its Content Credentials say it was made with generative AI (Adobe Firefly 1.0), "
                                         "signed by wsloc test signer")
    assert found["credentials"]["actions"][0]["software_agent"] == "Firefly"


def test_ai_filled_photo_lists_its_ingredient(signed):
    found = prov.read_provenance(signed["filled"])
    credentials = found["credentials"]
    assert credentials["generative_ai"] == "edited"
    assert found["statement"].startswith("Its Content Credentials say it was edited with generative AI (Adobe Photoshop 1.0)")
    assert [(i["title"], i["relationship"]) for i in credentials["ingredients"]] == [("beach.jpg", "parentOf")]
    assert prov.ingredient_in_words(credentials["ingredients"][0]) == "beach.jpg (parentOf, image/jpeg)"


def test_changed_after_signing_is_said_so(signed):
    found = prov.read_provenance(signed["changed"])
    assert found["credentials"]["hash_matches"] is False
    assert "changed after it was signed" in found["statement"]
    assert prov.csv_columns(found) == {"credentials_present": True, "credentials_valid": False, "ai_declared": False}


def test_stripped_credentials_say_nothing(signed):
    found = prov.read_provenance(signed["stripped"])
    assert found["credentials"] == {"present": False} and found["statement"] is None
    assert prov.csv_columns(found) == {"credentials_present": False, "credentials_valid": None, "ai_declared": False}


def test_xmp_only_declaration_is_a_claim_by_the_file(signed):
    found = prov.read_provenance(signed["xmp_only"])
    assert found["credentials"] == {"present": False}
    assert found["declarations"]["creator_tool"] == "Midjourney" and found["generative_ai_declared"]
    assert found["statement"] == ("Its metadata (unsigned, anyone can write it) says it was created with generative "
                                  "AI (a trained model) (by Midjourney, as the file says).")


def test_every_iptc_term_has_plain_words():
    terms = ["digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm", "print", "minorHumanEdits",
             "humanEdits", "compositeCapture", "algorithmicallyEnhanced", "dataDrivenMedia", "digitalArt",
             "virtualRecording", "compositeSynthetic", "trainedAlgorithmicMedia",
             "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia", "screenCapture", "composite",
             "softwareImage", "digitalCreation"]
    for term in terms:
        said = prov.source_type_in_words(IPTC + term)
        assert said["term"] == term and "unknown" not in said["words"]
    assert [t for t in terms if prov.source_type_in_words(IPTC + t)["generative_ai"]] == [
        "trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"]
    assert "unknown" in prov.source_type_in_words(IPTC + "somethingNew")["words"]


def test_declarations_read_history_dates_and_software():
    exif = Image.Exif()
    exif[0x0131] = "GIMP 2.10"
    exif[0x0132] = "2024:05:01 10:00:00"
    data = small_jpeg(exif=exif, xmp=xmp_packet(xmp_CreatorTool="Adobe Photoshop 25.0 (Windows)",
                                                 photoshop_History="cropped", xmp_CreateDate="2024-04-30T09:00:00"))
    declared = prov.read_provenance(data)["declarations"]
    assert declared["software"] == "GIMP 2.10" and declared["creator_tool"] == "Adobe Photoshop 25.0 (Windows)"
    assert {"source": "EXIF DateTime", "value": "2024:05:01 10:00:00"} in declared["modified"]
    assert {"source": "XMP CreateDate", "value": "2024-04-30T09:00:00"} in declared["created"]
    assert declared["history"] == ["Photoshop history: cropped"]


# --------------------------------------------------------------------------- the metadata reader (Pillow, defusedxml)


HISTORY_XMP = xmp_document(
    '<xmp:CreatorTool>Adobe Photoshop 25.0 (Windows)</xmp:CreatorTool>'
    '<xmp:ModifyDate>2024-05-02T11:00:00</xmp:ModifyDate>'
    '<Iptc4xmpExt:DigitalSourceType>' + IPTC + 'compositeWithTrainedAlgorithmicMedia</Iptc4xmpExt:DigitalSourceType>'
    '<dcterms:provenance rdf:resource="https://example.org/manifest.c2pa"/>'
    '<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Boats</rdf:li><rdf:li xml:lang="fr">Bateaux</rdf:li></rdf:Alt>'
    '</dc:title>'
    '<dc:subject><rdf:Bag><rdf:li>sea</rdf:li><rdf:li>boat</rdf:li></rdf:Bag></dc:subject>'
    '<xmpMM:DerivedFrom stRef:instanceID="xmp.iid:1" stRef:documentID="xmp.did:0"/>'
    '<xmpMM:History><rdf:Seq>'
    '<rdf:li rdf:parseType="Resource"><stEvt:action>created</stEvt:action>'
    '<stEvt:softwareAgent>Adobe Photoshop 25.0</stEvt:softwareAgent><stEvt:when>2024-05-01T10:00:00</stEvt:when></rdf:li>'
    '<rdf:li stEvt:action="saved" stEvt:changed="/" stEvt:when="2024-05-01T10:05:00"/>'
    '<rdf:li><rdf:Description stEvt:action="converted" stEvt:softwareAgent="Adobe Photoshop 25.0"/></rdf:li>'
    '</rdf:Seq></xmpMM:History>'
    '<acme:Tool>Acme Fill 2</acme:Tool>',
    'xmlns:stRef="http://ns.adobe.com/xap/1.0/sType/ResourceRef#" xmlns:acme="http://example.org/acme/1.0/" '
    'xmp:MetadataDate="2024-05-02T11:00:01" photoshop:DateCreated="2024-05-01"')
EXPECTED_XMP = {
    "Xmp.xmp.CreatorTool": "Adobe Photoshop 25.0 (Windows)",
    "Xmp.xmp.ModifyDate": "2024-05-02T11:00:00",
    "Xmp.xmp.MetadataDate": "2024-05-02T11:00:01",
    "Xmp.photoshop.DateCreated": "2024-05-01",
    "Xmp.iptcExt.DigitalSourceType": IPTC + "compositeWithTrainedAlgorithmicMedia",
    "Xmp.dcterms.provenance": "https://example.org/manifest.c2pa",
    "Xmp.dc.title": "Boats; Bateaux",
    "Xmp.dc.subject": "sea; boat",
    "Xmp.xmpMM.DerivedFrom": 'type="Struct"',
    "Xmp.xmpMM.DerivedFrom/stRef:instanceID": "xmp.iid:1",
    "Xmp.xmpMM.DerivedFrom/stRef:documentID": "xmp.did:0",
    "Xmp.xmpMM.History": 'type="Seq"',
    "Xmp.xmpMM.History[1]": 'type="Struct"', "Xmp.xmpMM.History[2]": 'type="Struct"',
    "Xmp.xmpMM.History[3]": 'type="Struct"',
    "Xmp.xmpMM.History[1]/stEvt:action": "created",
    "Xmp.xmpMM.History[1]/stEvt:softwareAgent": "Adobe Photoshop 25.0",
    "Xmp.xmpMM.History[1]/stEvt:when": "2024-05-01T10:00:00",
    "Xmp.xmpMM.History[2]/stEvt:action": "saved",
    "Xmp.xmpMM.History[2]/stEvt:changed": "/",
    "Xmp.xmpMM.History[2]/stEvt:when": "2024-05-01T10:05:00",
    "Xmp.xmpMM.History[3]/stEvt:action": "converted",
    "Xmp.xmpMM.History[3]/stEvt:softwareAgent": "Adobe Photoshop 25.0",
    "Xmp.acme.Tool": "Acme Fill 2",  # a namespace exiv2 does not know keeps the packet's prefix
}
IIM = iptc_datasets({(2, 120): "A boat, spliced", (2, 25): ["sea", "boat"], (2, 55): "20240501",
                     (2, 60): "100000+0200", (2, 80): "Ana Lens"})
EXPECTED_IPTC = {"Iptc.Application2.RecordVersion": "4", "Iptc.Application2.Caption": "A boat, spliced",
                 "Iptc.Application2.Keywords": "sea; boat", "Iptc.Application2.DateCreated": "2024-05-01",
                 "Iptc.Application2.TimeCreated": "10:00:00+02:00", "Iptc.Application2.Byline": "Ana Lens"}


def _exif() -> Image.Exif:
    from PIL.TiffImagePlugin import IFDRational

    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0131] = "GIMP 2.10"
    exif[0x0132] = "2024:05:01 10:00:00"
    exif.get_ifd(0x8769).update({0x9003: "2024:04:30 09:00:00", 0x829A: IFDRational(1, 250),
                                 0x9000: b"0232", 0x927C: b"\x00" * 400})  # 0x927C: a MakerNote, left out
    exif.get_ifd(0x8825).update({1: "N", 2: (IFDRational(52, 1), IFDRational(30, 1), IFDRational(0, 1))})
    return exif


def _icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _check_metadata(metadata: dict) -> None:
    assert metadata["error"] is None
    assert {k: metadata["exif"][k] for k in ("Exif.Image.Make", "Exif.Image.Software", "Exif.Image.DateTime",
                                              "Exif.Photo.DateTimeOriginal", "Exif.Photo.ExposureTime",
                                              "Exif.Photo.ExifVersion")} == {
        "Exif.Image.Make": "Canon", "Exif.Image.Software": "GIMP 2.10", "Exif.Image.DateTime": "2024:05:01 10:00:00",
        "Exif.Photo.DateTimeOriginal": "2024:04:30 09:00:00", "Exif.Photo.ExposureTime": "1/250",
        "Exif.Photo.ExifVersion": "0232"}
    assert not any("MakerNote" in key or "ExifTag" in key or "GPSTag" in key for key in metadata["exif"])
    assert metadata["gps"] == {"Exif.GPSInfo.GPSLatitudeRef": "N", "Exif.GPSInfo.GPSLatitude": "52/1 30/1 0/1"}
    assert metadata["iptc"] == EXPECTED_IPTC
    assert metadata["xmp"] == EXPECTED_XMP
    assert metadata["icc"]["color_space"].strip() == "RGB" and int(metadata["icc"]["size_bytes"]) > 100
    declared = prov.declarations(metadata)
    assert declared["history"] == ["created by Adobe Photoshop 25.0 at 2024-05-01T10:00:00",
                                   "saved at 2024-05-01T10:05:00 (changed /)", "converted by Adobe Photoshop 25.0"]
    assert declared["digital_source_type"]["term"] == "compositeWithTrainedAlgorithmicMedia"
    assert declared["generative_ai"] and declared["remote_manifest"] == "https://example.org/manifest.c2pa"
    assert declared["created"] == [{"source": "EXIF DateTimeOriginal", "value": "2024:04:30 09:00:00"},
                                   {"source": "XMP photoshop:DateCreated", "value": "2024-05-01"},
                                   {"source": "IPTC DateCreated", "value": "2024-05-01"}]
    assert [m["source"] for m in declared["modified"]] == ["EXIF DateTime", "XMP ModifyDate", "XMP MetadataDate"]


def test_read_metadata_of_a_jpeg_gives_exiv2_keys():
    image = Image.open(io.BytesIO(small_jpeg()))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=_exif().tobytes(), xmp=HISTORY_XMP, icc_profile=_icc())
    data = with_iptc(buffer.getvalue(), IIM)
    layout = prov.metadata_layout(data)
    assert layout["format"] == "JPEG" and layout["xmp_bytes"] > len(HISTORY_XMP)
    _check_metadata(prov.read_metadata(layout["header"]))
    _check_metadata(prov.read_metadata(data))  # the whole file reads the same


def test_read_metadata_of_a_png_gives_exiv2_keys():
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", HISTORY_XMP.decode("utf-8"), zip=True)
    info.add_text("Raw profile type iptc", raw_profile("iptc", IIM), zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "gray").save(buffer, "PNG", pnginfo=info, exif=_exif().tobytes(), icc_profile=_icc())
    layout = prov.metadata_layout(buffer.getvalue())
    assert layout["format"] == "PNG" and layout["xmp_bytes"] > 0
    _check_metadata(prov.read_metadata(layout["header"]))


def test_an_iptc_block_wrapped_in_photoshop_resources_is_read_in_a_png():
    resource = b"8BIM\x04\x04\x00\x00" + len(IIM).to_bytes(4, "big") + IIM + b"\x00" * (len(IIM) % 2)
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type 8bim", raw_profile("8bim", b"8BIM\x03\xed\x00\x00\x00\x00\x00\x02ab" + resource))
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", pnginfo=info)
    assert prov.read_metadata(prov.metadata_layout(buffer.getvalue())["header"])["iptc"] == EXPECTED_IPTC


#: An XMP packet as exiv2 writes it (written with pyexiv2 2.16, libexiv2; whitespace collapsed) and
#: the keys and values pyexiv2 read from it: the reader that replaced it gives the same.
EXIV2_PACKET = (
    "<?xpacket begin=\"\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?> <x:xmpmeta xmlns:x=\"adobe:ns:meta/\" x:xmptk=\"XMP "
    "Core 4.4.0-Exiv2\"> <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"> <rdf:Descriptio"
    "n rdf:about=\"\" xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" "
    "xmlns:iptcExt=\"http://iptc.org/std/Iptc4xmpExt/2008-02-29/\" xmlns:xmpMM=\"http://ns.adobe.com/xap/1.0"
    "/mm/\" xmlns:stEvt=\"http://ns.adobe.com/xap/1.0/sType/ResourceEvent#\" xmlns:stRef=\"http://ns.adobe.co"
    "m/xap/1.0/sType/ResourceRef#\" xmlns:Iptc4xmpCore=\"http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/\" xmlns"
    ":photoshop=\"http://ns.adobe.com/photoshop/1.0/\" xmlns:tiff=\"http://ns.adobe.com/tiff/1.0/\" xmlns:exi"
    "f=\"http://ns.adobe.com/exif/1.0/\" xmp:CreatorTool=\"Photoshop\" iptcExt:DigitalSourceType=\"http://cv.i"
    "ptc.org/newscodes/digitalsourcetype/digitalCapture\" photoshop:DateCreated=\"2024-05-01\" tiff:Make=\"Ca"
    "non\"> <dc:subject> <rdf:Seq> <rdf:li>x</rdf:li> <rdf:li>y</rdf:li> </rdf:Seq> </dc:subject> <dc:titl"
    "e> <rdf:Alt> <rdf:li xml:lang=\"x-default\">T</rdf:li> <rdf:li xml:lang=\"fr\">Tf</rdf:li> </rdf:Alt> </"
    "dc:title> <iptcExt:LocationCreated> <rdf:Bag> <rdf:li iptcExt:City=\"Bergen\"/> </rdf:Bag> </iptcExt:L"
    "ocationCreated> <xmpMM:History> <rdf:Seq> <rdf:li stEvt:action=\"created\" stEvt:when=\"2024-05-01T10:0"
    "0:00\"/> <rdf:li stEvt:action=\"saved\" stEvt:softwareAgent=\"PS\"/> </rdf:Seq> </xmpMM:History> <xmpMM:D"
    "erivedFrom stRef:instanceID=\"iid1\"/> <Iptc4xmpCore:CreatorContactInfo Iptc4xmpCore:CiAdrCity=\"Oslo\"/"
    "> <exif:ISOSpeedRatings> <rdf:Seq> <rdf:li>100</rdf:li> </rdf:Seq> </exif:ISOSpeedRatings> </rdf:Des"
    "cription> </rdf:RDF> </x:xmpmeta> <?xpacket end=\"w\"?>"
).encode("utf-8")
EXIV2_KEYS = {
    "Xmp.dc.subject": "x; y",
    "Xmp.dc.title": "T; Tf",
    "Xmp.exif.ISOSpeedRatings": "100",
    "Xmp.iptc.CreatorContactInfo": "type=\"Struct\"",
    "Xmp.iptc.CreatorContactInfo/Iptc4xmpCore:CiAdrCity": "Oslo",
    "Xmp.iptcExt.DigitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",
    "Xmp.iptcExt.LocationCreated": "type=\"Bag\"",
    "Xmp.iptcExt.LocationCreated[1]": "type=\"Struct\"",
    "Xmp.iptcExt.LocationCreated[1]/iptcExt:City": "Bergen",
    "Xmp.photoshop.DateCreated": "2024-05-01",
    "Xmp.tiff.Make": "Canon",
    "Xmp.xmp.CreatorTool": "Photoshop",
    "Xmp.xmpMM.DerivedFrom": "type=\"Struct\"",
    "Xmp.xmpMM.DerivedFrom/stRef:instanceID": "iid1",
    "Xmp.xmpMM.History": "type=\"Seq\"",
    "Xmp.xmpMM.History[1]": "type=\"Struct\"",
    "Xmp.xmpMM.History[1]/stEvt:action": "created",
    "Xmp.xmpMM.History[1]/stEvt:when": "2024-05-01T10:00:00",
    "Xmp.xmpMM.History[2]": "type=\"Struct\"",
    "Xmp.xmpMM.History[2]/stEvt:action": "saved",
    "Xmp.xmpMM.History[2]/stEvt:softwareAgent": "PS",
}


def test_an_exiv2_written_packet_reads_as_pyexiv2_read_it():
    assert prov._flat(prov.parse_xmp(EXIV2_PACKET)) == EXIV2_KEYS


LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lollollollollollollollollollol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
          + ']><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
          '<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="&lol9;"/></rdf:RDF></x:xmpmeta>')
EXTERNAL = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="&secret;"/></rdf:RDF>'
            '</x:xmpmeta>')


@pytest.mark.parametrize("packet", [LAUGHS, EXTERNAL], ids=["billion-laughs", "external-entity"])
def test_an_xmp_packet_with_entities_is_refused_fast(packet):
    data = small_jpeg(xmp=packet.encode("utf-8"), exif=_exif())
    start = time.perf_counter()
    found = prov.read_provenance(data)
    assert time.perf_counter() - start < 0.5
    metadata = found["metadata"]
    assert metadata["xmp"] == {} and metadata["error"].startswith("XMP: DTDForbidden")
    assert metadata["exif"]["Exif.Image.Software"] == "GIMP 2.10"  # the other parts are still read
    assert found["problem"].startswith("the file's metadata could not be read (XMP: DTDForbidden")
    assert found["statement"].startswith("Provenance: the file's metadata could not be read")
    assert "\n" not in found["statement"] and "root:" not in str(found)


def test_a_malformed_xmp_packet_is_an_error_line():
    for packet in (xmp_packet(xmp_CreatorTool="x")[:-60], b"<x:xmpmeta><unclosed", b"\xff\xfe\x00garbage"):
        metadata = prov.read_metadata(prov.metadata_layout(small_jpeg(xmp=packet))["header"])
        assert metadata["xmp"] == {} and metadata["error"].startswith("XMP: ")
        assert "\n" not in metadata["error"]


# --------------------------------------------------------------------------- bad input


def test_truncated_manifest_is_one_line_and_no_crash(signed):
    data = signed["camera"]
    start = data.find(b"jumb")
    broken = data[: start + 300] + data[start + 400:]
    found = prov.read_provenance(broken)
    assert found["credentials"]["present"] and not found["credentials"]["readable"]
    assert found["statement"].startswith("Content Credentials: the file's Content Credentials are damaged")
    assert "\n" not in found["statement"]


def test_garbage_in_the_jumbf_segment_is_one_line(signed):
    data = signed["camera"]
    start = data.find(b"jumb")
    broken = data[: start + 40] + bytes(range(256)) * 4 + data[start + 40 + 1024:]
    found = prov.read_provenance(broken)
    assert found["statement"].startswith("Content Credentials: ") and found["credentials"]["readable"] is False


def _recording_server():
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, requests


def test_remote_manifest_is_named_never_fetched():
    server, requests = _recording_server()
    try:
        url = f"http://127.0.0.1:{server.server_port}/manifest.c2pa"
        found = prov.read_provenance(small_jpeg(xmp=xmp_packet(dcterms_provenance=url)))
        time.sleep(0.2)
    finally:
        server.shutdown()
    assert requests == []
    assert found["credentials"] == {"present": False, "remote_url": url}
    assert "wsloc does not fetch it" in found["statement"] and url in found["statement"]


def test_remote_manifest_with_a_jumbf_box_is_not_fetched(signed):
    """A file with both an embedded box and a remote reference: the library's remote fetch is off."""
    server, requests = _recording_server()
    try:
        url = f"http://127.0.0.1:{server.server_port}/manifest.c2pa"
        data = signed["camera"]
        with_xmp = small_jpeg(xmp=xmp_packet(dcterms_provenance=url))
        # Put the signed file's APP11 segments into the XMP-carrying file (manifest no longer matching).
        start = data.find(b"\xff\xeb")
        end = data.find(b"\xff\xdb")
        mixed = with_xmp[:2] + data[start:end] + with_xmp[2:]
        found = prov.read_provenance(mixed)
        time.sleep(0.2)
    finally:
        server.shutdown()
    assert requests == []
    assert found["statement"]  # one line, whatever the library made of it


def test_a_50_mb_xmp_packet_is_refused_quickly():
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp_packet(photoshop_History="A" * 50_000_000).decode())
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "gray").save(buffer, "PNG", pnginfo=info)
    start = time.perf_counter()
    found = prov.read_provenance(buffer.getvalue())
    assert time.perf_counter() - start < 2.0
    assert "XMP metadata is 50 MB" in found["problem"] and found["metadata"]["xmp"] == {}
    assert found["statement"].startswith("Provenance: the file's XMP metadata is 50 MB")


def test_an_expired_certificate_is_said_in_words():
    expiring = make_chain(valid_days=(-1, 2 / 86400))  # valid for two more seconds: signing is allowed
    data = sign(small_jpeg(), expiring, [action("c2pa.created", "digitalCapture")])
    time.sleep(3)
    found = prov.read_provenance(data)
    assert found["credentials"]["signature_valid"] is False
    assert "signature NOT valid (the signing certificate has expired" in found["statement"]
    assert prov.csv_columns(found)["credentials_valid"] is False


def test_credentials_in_a_format_the_library_does_not_read_are_one_line(signed):
    data = signed["camera"]
    start = data.find(b"jumb") - 8
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "BMP")
    found = prov.read_provenance(buffer.getvalue() + data[start: start + 2000])
    assert found["statement"].startswith("Content Credentials: the file has Content Credentials in a form the "
                                         "C2PA library cannot read")


def test_unreadable_file_gives_a_dict_not_an_exception():
    for data in (b"", b"\xff\xd8\xff", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 10):
        found = prov.read_provenance(data)
        assert found["used_in_verdict"] is False and found["credentials"]["present"] is False


def test_a_trust_list_without_certificates_is_refused(tmp_path):
    path = tmp_path / "list.pem"
    path.write_text("not a certificate")
    with pytest.raises(ValueError, match="expected a trust list of PEM certificates"):
        prov.read_trust_anchors(path)


# --------------------------------------------------------------------------- strings stay text


HOSTILE = '<img src="http://127.0.0.1:9/px.gif"> ![x](http://127.0.0.1:9/md.png) [y](http://127.0.0.1:9/) \x1b[31m'


def test_hostile_strings_are_escaped_for_each_place():
    assert "<img" not in html_text(HOSTILE) and "&lt;img" in html_text(HOSTILE)
    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark").render(markdown_text(HOSTILE))  # linkify on, HTML on
    assert "<img" not in rendered and "<a " not in rendered and "&lt;img" in rendered
    assert "<img" in markdown_it.MarkdownIt("commonmark").render(HOSTILE)  # the test can fail
    assert "\x1b" not in terminal_text(HOSTILE) and "\x1b" not in prov.clean_text(HOSTILE)
    assert [csv_text(v) for v in ("=HYPERLINK(1)", "+1", "-1", "@SUM(1)", "ok", 0.5)] == [
        "'=HYPERLINK(1)", "'+1", "'-1", "'@SUM(1)", "ok", 0.5]


def test_hostile_credentials_stay_text_in_the_csv_row(chain):
    data = sign(small_jpeg(), chain, [action("c2pa.created", "trainedAlgorithmicMedia", HOSTILE)],
                generator="=cmd|' /C calc'!A0")
    found = prov.read_provenance(data)
    assert found["credentials"]["claim_generator"].startswith("=cmd")  # kept as the file says, as text
    row = row_from_payload({"verdict": "uncertain", "provenance": found, "notes": []}, "=evil.jpg", "x")
    cells = csv_cells(row)
    assert cells["file"] == "'=evil.jpg" and cells["ai_declared"] == "true" and cells["credentials_present"] == "true"
    buffer = io.StringIO()
    csv.DictWriter(buffer, list(cells)).writerow(cells)
    assert ",=" not in buffer.getvalue()


def test_no_credentials_costs_next_to_nothing():
    """A photo without credentials never reaches the C2PA reader (the layout walk finds no JUMBF)."""
    data = small_jpeg(size=1024)
    assert prov.metadata_layout(data)["jumbf"] is False
    start = time.perf_counter()
    for _ in range(20):
        prov.read_provenance(data)
    assert (time.perf_counter() - start) / 20 < 0.03


# --------------------------------------------------------------------------- public samples (tests/fixtures/c2pa)

PUBLIC_SAMPLES = Path(__file__).resolve().parent / "fixtures" / "c2pa"


@pytest.mark.parametrize("name, says, never", [
    ("C.jpg", ["signature valid", "signer not checked against a trust list", "content unchanged since signing"],
     ["verified", "changed after it was signed"]),
    ("CA.jpg", ["signature valid", "content unchanged since signing"], ["verified"]),
    ("XCA.jpg", ["changed after it was signed"], ["content unchanged", "verified"]),
    ("E-sig-CA.jpg", ["signature NOT valid"], ["signature valid;", "verified"]),
    ("cloud.jpg", ["remote manifest", "does not fetch it"], ["signature valid", "verified"]),
])
def test_public_c2pa_samples_are_named_as_what_they_are(name, says, never):
    """Real files signed by the C2PA SDK (the Content Authenticity Initiative's own test images):
    the statement names each case, and never says "verified" without a trust list."""
    provenance = prov.read_provenance((PUBLIC_SAMPLES / name).read_bytes())
    statement = provenance["statement"]
    for words in says:
        assert words in statement, (name, statement)
    for words in never:
        assert words not in statement, (name, statement)
    assert provenance["used_in_verdict"] is False


def test_a_public_sample_lists_its_ingredient_and_actions():
    credentials = prov.read_provenance((PUBLIC_SAMPLES / "CA.jpg").read_bytes())["credentials"]
    assert [i["title"] for i in credentials["ingredients"]] == ["A.jpg"]
    assert credentials["ingredients"][0]["relationship"] == "parentOf"
    assert [a["action"] for a in credentials["actions"]] == ["c2pa.opened", "c2pa.color_adjustments"]
    assert credentials["signature_valid"] is True and credentials["hash_matches"] is True
    tampered = prov.read_provenance((PUBLIC_SAMPLES / "XCA.jpg").read_bytes())["credentials"]
    assert tampered["hash_matches"] is False

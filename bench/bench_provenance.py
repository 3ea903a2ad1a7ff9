"""Time provenance (credentials, declarations, metadata) on a 12-megapixel photo.

    python -m bench.bench_provenance [--repeat 20]

Three files made from noise at 4000x3000 (JPEG quality 90, about 10 MB): without credentials or
declarations, with an XMP declaration, and signed with Content Credentials (a test certificate from
tests/provenance_fixtures.py). Prints the median milliseconds of ``read_provenance`` on each; the
target (issue 36) is at most 30 ms per photo and nothing measurable without credentials.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
from PIL import Image

from tests.provenance_fixtures import IPTC, action, make_chain, sign, xmp_packet
from wsloc_runtime.provenance import read_provenance


def twelve_megapixels(xmp: bytes | None = None) -> bytes:
    pixels = (np.random.default_rng(0).random((3000, 4000, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90, **({"xmp": xmp} if xmp else {}))
    return buffer.getvalue()


def median_ms(data: bytes, repeat: int) -> float:
    read_provenance(data)  # the first call loads the libraries
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        read_provenance(data)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    plain = twelve_megapixels()
    declared = twelve_megapixels(xmp_packet(Iptc4xmpExt_DigitalSourceType=IPTC + "trainedAlgorithmicMedia"))
    signed = sign(plain, make_chain(), [action("c2pa.created", "digitalCapture")])
    for name, data in (("no credentials", plain), ("XMP declaration", declared), ("Content Credentials", signed)):
        print(f"{name:>20}: {median_ms(data, args.repeat):7.2f} ms  ({len(data) / 1e6:.1f} MB, 12 MP)")


if __name__ == "__main__":
    main()

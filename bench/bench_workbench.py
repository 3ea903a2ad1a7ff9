"""The app's workbench (issue 34): how long a threshold redraw and an upload-to-verdict take, and
how large the report is.

- redraw: what the threshold slider runs on the server (app.py's ``recut``: the mask panel and the
  comparison's "after" side redrawn from the stored map), plus Gradio's own encoding of the
  pictures it sends (``ImageSlider.postprocess`` and ``Image.postprocess``, both JPEG as in app.py), on a
  ~1 MP photo. Nothing is analysed again.
- upload to verdict: what app.py runs for a ~1 MP photo, through the runtime (bench imports no
  app.py, tests/test_layers.py): the pipeline, the downloads and the report (``write_result_files``,
  as ``app.analyse`` writes them), then the page's main pictures (the decoded photo, the comparison,
  the heatmap with its colour bar, the mask panel) encoded as Gradio does; the browser adds the
  transfer and the step-by-step gallery (tests/test_browser_workbench.py times the whole).
- report: ``wsloc localize --report``'s HTML for a 12 MP synthetic photo, in bytes.

    python -m bench.bench_workbench [--models assets/models] [--runs 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.common import machine, stats_ms, synth_photo_jpeg, table, write_result

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=None, help="WCBnet models (default: the bundled ones)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", default=None, help="JSON result (default bench/results/workbench.json)")
    args = parser.parse_args(argv)
    if args.models:
        import os

        os.environ["WSLOC_MODELS"] = str(Path(args.models).resolve())
    sys.path.insert(0, str(ROOT))
    import gradio as gr

    from wsloc_runtime import viz, workbench
    from wsloc_runtime.imageio import load_image
    from wsloc_runtime.outputs import localize_to_files, write_result_files
    from wsloc_runtime.pipeline import Localizer

    work = Path(tempfile.mkdtemp(prefix="bench_workbench_"))
    photo_1mp = synth_photo_jpeg(work / "photo_1mp.jpg", 1224, 816)
    photo_12mp = synth_photo_jpeg(work / "photo_12mp.jpg", 4000, 3000)

    localizer = Localizer()

    def analyse(index: int):
        result = localizer.localize(str(photo_1mp))
        write_result_files(result, work / f"page{index}", "photo", str(photo_1mp), report=True,
                           beside=localizer.stages_beside)
        return result

    analyse(-1)  # warm-up: sessions, caches
    slider, mask_image = gr.ImageSlider(format="jpeg"), gr.Image(format="jpeg")  # as app.py makes them

    verdict_times, page_times = [], []
    for index in range(args.runs):
        start = time.perf_counter()
        result = analyse(index)
        middle = time.perf_counter()
        photo = load_image(str(photo_1mp))
        bench = workbench.workbench_of(result, photo)
        slider.postprocess((bench.photo, workbench.after_picture(bench)))
        mask_image.postprocess(workbench.mask_panel(bench))
        mask_image.postprocess(viz.with_colour_bar(viz.overlay(result.image, result.enhanced)))
        page_times.append(time.perf_counter() - middle)
        verdict_times.append(time.perf_counter() - start)

    redraw_times, encode_times = [], []
    for index in range(args.runs):
        threshold = 0.3 + 0.4 * index / max(1, args.runs - 1)
        start = time.perf_counter()
        panel = workbench.mask_panel(bench, threshold)
        after = workbench.after_picture(bench, threshold)
        drawn = time.perf_counter()
        slider.postprocess((bench.photo, after))
        mask_image.postprocess(panel)
        encode_times.append(time.perf_counter() - drawn)
        redraw_times.append(time.perf_counter() - start)

    row = localize_to_files(Localizer(), str(photo_12mp), work / "out", "photo_12mp", report=True)
    if row["error"]:
        raise SystemExit(row["error"])
    report_bytes = (work / "out" / "photo_12mp_report.html").stat().st_size

    payload = {
        "machine": machine(), "command": " ".join(["python -m bench.bench_workbench", *(argv or sys.argv[1:])]),
        "photo_1mp": list(bench.photo.shape[:2]),
        "redraw_1mp": stats_ms(redraw_times), "redraw_encode_1mp": stats_ms(encode_times),
        "upload_to_verdict_1mp": stats_ms(verdict_times), "page_pictures_1mp": stats_ms(page_times),
        "report_12mp_bytes": report_bytes,
    }
    print(table(["measure", "median", "min", "runs"], [
        ["threshold redraw, 1 MP (ms, incl. Gradio's encoding)", payload["redraw_1mp"]["median_ms"],
         payload["redraw_1mp"]["min_ms"], args.runs],
        ["  of which Gradio's JPEG/PNG encoding (ms)", payload["redraw_encode_1mp"]["median_ms"],
         payload["redraw_encode_1mp"]["min_ms"], args.runs],
        ["upload to verdict, 1 MP (ms, server side)", payload["upload_to_verdict_1mp"]["median_ms"],
         payload["upload_to_verdict_1mp"]["min_ms"], args.runs],
        ["  of which the page's pictures (ms)", payload["page_pictures_1mp"]["median_ms"],
         payload["page_pictures_1mp"]["min_ms"], args.runs],
        ["report, 12 MP photo (bytes)", report_bytes, report_bytes, 1],
    ]))
    print(f"written: {write_result('workbench', payload, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

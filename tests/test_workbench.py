"""The app's workbench pictures (wsloc_runtime/workbench.py, viz.py) and where the app listens."""

from __future__ import annotations

import numpy as np
import pytest

from wsloc_runtime import viz, workbench
from wsloc_runtime.pipeline import MASK_THRESHOLD


def test_the_overlay_leaves_the_photo_as_it_is_where_the_map_is_zero():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    values = np.zeros((40, 60), np.float32)
    values[10:20, 10:30] = 1.0
    drawn = viz.overlay(photo, values, opacity=0.7)
    np.testing.assert_array_equal(drawn[values == 0], photo[values == 0])  # no sign: the photo itself
    # where the map is 1: 70% heatmap, 30% photo (rounded once to uint8)
    expected = photo[values == 1] * 0.3 + viz.heatmap(values)[values == 1] * 0.7
    assert np.abs(drawn[values == 1].astype(np.float64) - expected).max() <= 0.5 + 1e-3


def test_a_colour_bar_keeps_the_picture_and_runs_from_strong_at_the_top_to_none_at_the_bottom():
    picture = np.full((300, 200, 3), 77, np.uint8)
    barred = viz.with_colour_bar(picture)
    assert barred.shape[0] == 300 and barred.shape[1] > 200
    np.testing.assert_array_equal(barred[:, :200], picture)
    palette = viz.heatmap_palette()
    bar_column = barred[:, 200:][:, 8]  # inside the bar (gap 4..5 px, bar at least 14 px)
    inside = [row for row in range(300) if not (bar_column[row] == 255).all()]
    top, bottom = bar_column[inside[0]].astype(int), bar_column[inside[-1]].astype(int)
    assert np.abs(top - palette[255]).max() <= 2 and np.abs(bottom - palette[0]).max() <= 2


def test_the_legend_picture_shows_the_colour_map_left_to_right():
    legend = viz.legend_picture(400)
    row = legend[20, 10:390].astype(int)  # the bar's middle row
    palette = viz.heatmap_palette().astype(int)
    assert np.abs(row[0] - palette[0]).max() <= 2 and np.abs(row[-1] - palette[255]).max() <= 2
    with pytest.raises(ValueError, match="at least 200"):
        viz.legend_picture(100)


def _bench(no_mask: bool = False, segments=None) -> workbench.Workbench:
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float32)
    enhanced = np.clip(1.0 - np.hypot(yy - 32, xx - 48) / 40.0, 0, 1).astype(np.float32)
    image = np.full((64, 96, 3), 120, np.uint8)
    photo = np.full((128, 192, 3), 120, np.uint8)  # twice the working size
    bench = workbench.Workbench(photo, image, enhanced, no_mask, segments or [])
    return workbench.set_opacity(bench, 0.7)


def test_the_threshold_cuts_the_stored_map_and_a_photo_judged_authentic_gets_no_mask():
    bench = _bench()
    np.testing.assert_array_equal(workbench.shown_mask(bench, MASK_THRESHOLD), bench.enhanced >= MASK_THRESHOLD)
    assert workbench.mask_share(bench, 0.2) > workbench.mask_share(bench, 0.5) > workbench.mask_share(bench, 0.8) > 0
    low, high = workbench.after_picture(bench, 0.2), workbench.after_picture(bench, 0.8)
    assert low.shape == bench.photo.shape and not np.array_equal(low, high)  # full resolution, redrawn
    assert not np.array_equal(workbench.mask_panel(bench, 0.2), workbench.mask_panel(bench, 0.8))
    authentic = _bench(no_mask=True)
    assert not workbench.shown_mask(authentic, 0.05).any()
    np.testing.assert_array_equal(workbench.after_picture(authentic, 0.05), authentic.heat)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        viz.mask_at(bench.enhanced, 1.5)


def test_clone_lines_are_drawn_at_the_pictures_scale():
    bench = _bench(segments=[[[10.0, 10.0], [80.0, 50.0]]])
    green = np.array(viz.CLONE_LINE_COLOUR)
    panel = workbench.mask_panel(bench)
    after = workbench.after_picture(bench)
    assert (panel == green).all(axis=2)[10, 10] and (panel == green).all(axis=2)[50, 80]
    assert (after == green).all(axis=2)[20, 20] and (after == green).all(axis=2)[100, 160]  # scaled x2
    assert not (workbench.mask_panel(_bench()) == green).all(axis=2).any()


def test_comparison_photo_is_full_resolution_up_to_its_limit():
    photo = np.zeros((300, 400, 3), np.uint8)
    assert workbench.comparison_photo(photo, 400 * 300) is photo
    reduced = workbench.comparison_photo(photo, 100 * 75)
    assert reduced.shape[0] * reduced.shape[1] <= 100 * 75 and reduced.shape[1] == 100


def test_copy_move_segments_join_the_two_copies_on_the_hats_example():
    """The segments are display only: they end where the copy-move map marks the copies."""
    from tests.test_app import EXAMPLES
    from wsloc_runtime.evidence.copy_move import SEGMENTS_PER_COPY, copy_move_evidence
    from wsloc_runtime.imageio import load_image

    photo = load_image(str(EXAMPLES / "copymove_hats.jpg"))
    reading = copy_move_evidence(photo)
    segments = reading.details["segments"]
    assert reading.details["copies"] >= 1
    assert 3 <= len(segments) <= SEGMENTS_PER_COPY * reading.details["copies"]
    height, width = reading.map.shape
    for start, end in segments:
        for x, y in (start, end):
            assert 0 <= x < width and 0 <= y < height
            assert reading.map[round(y), round(x)] > 0, (x, y)  # on a marked copy
        assert np.hypot(end[0] - start[0], end[1] - start[1]) > 10  # a copy sits elsewhere


@pytest.mark.parametrize("environ, host", [
    ({}, "127.0.0.1"), ({"SPACE_ID": "user/wsloc"}, "0.0.0.0"),
    ({"GRADIO_SERVER_NAME": "10.0.0.5", "SPACE_ID": "user/wsloc"}, "10.0.0.5"),
])
def test_the_app_listens_on_this_machine_only_unless_asked_or_on_a_space(environ, host):
    import app

    assert app.default_host(environ) == host

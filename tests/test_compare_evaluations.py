"""studies.compare_evaluations: the before/after check of evaluate reports."""

import json

from studies.compare_evaluations import compare, largest_change, main


def _report(f1, rows, verdicts):
    return {"pixel_f1": f1, "pixel_auc": 0.9, "image_auc": None, "per_image": rows, "verdicts": verdicts}


def test_identical_rows_and_score_changes_are_counted():
    rows = [{"image": "a", "probability": 0.2}, {"image": "b", "probability": 0.7}]
    changed = [rows[0], {"image": "b", "probability": 0.71}]
    result = compare(_report(0.5, rows, {"x": 1}), _report(0.503, changed, {"x": 2}))
    assert result["identical_rows"] == 1 and result["rows"] == 2
    assert not result["same_verdicts"]
    assert abs(largest_change(result) - 0.003) < 1e-12


def test_exit_status_follows_the_tolerance(tmp_path, capsys):
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir()
    after.mkdir()
    (before / "s.json").write_text(json.dumps(_report(0.5, [], {})))
    (after / "s.json").write_text(json.dumps(_report(0.51, [], {})))
    (before / "only.json").write_text(json.dumps(_report(0.5, [], {})))
    assert main([str(before), str(after)]) == 1
    assert main([str(before), str(after), "--tolerance", "0.02"]) == 0
    assert "missing in" in capsys.readouterr().out


def test_fingerprint_subsets_keep_the_first_tampered_rows_with_absolute_paths(tmp_path):
    from studies.fingerprint_checkpoint import subset_csv

    (tmp_path / "s.csv").write_text("image,mask\na/1.jpg,\na/2.jpg,m/2.png\na/3.jpg,m/3.png\na/4.jpg,m/4.png\n")
    lines = subset_csv(tmp_path, "s", 2, tmp_path / "out.csv").read_text().splitlines()
    assert lines == ["image,mask", f"{tmp_path}/a/2.jpg,{tmp_path}/m/2.png", f"{tmp_path}/a/3.jpg,{tmp_path}/m/3.png"]


def test_verdicts_are_recomputed_from_the_scores_under_one_rule():
    """Two runs made while the verdict's edges changed compare on what their scores say under one rule."""
    from studies.compare_evaluations import with_verdicts

    rows = [{"image": "a", "tampered": True, "probability": 0.8, "verdict": "likely manipulated",
             "readability": {"kinds": {"pasted": 1.0}}},
            {"image": "b", "tampered": False, "probability": 0.05, "verdict": "uncertain",
             "readability": {"kinds": {"pasted": 0.2}}}]
    report = with_verdicts({"per_image": rows}, (0.1, 0.9), readable_from=0.5)
    assert [r["verdict"] for r in report["per_image"]] == ["uncertain", "cannot tell"]
    assert report["verdicts"]["likely manipulated"]["said"] == 0
    assert rows[0]["verdict"] == "likely manipulated"  # the input is left as it was

"""studies.results_table: the README's table is read from evaluate reports, never typed."""

import json

from studies.results_table import SETS, results_table


def _report(f1, auc, image_auc=None, verdicts=None):
    return {"pixel_f1": f1, "pixel_auc": auc, "image_auc": image_auc, "verdicts": verdicts or {}}


def test_columns_come_from_the_reports_and_missing_ones_show_a_dash(tmp_path):
    default, paper, baselines = (tmp_path / n for n in ("default", "paper", "baselines"))
    for folder in (default, paper, baselines):
        folder.mkdir()
    verdicts = {"likely manipulated": {"said": 4, "right": 3}, "likely authentic": {"said": 0, "right": 0}}
    (default / "noso.json").write_text(json.dumps(_report(0.8831, 0.9712, 0.95, verdicts)))
    (paper / "noso.json").write_text(json.dumps(_report(0.07, 0.67)))
    (baselines / "noso-fingerprint.json").write_text(json.dumps(_report(0.1234, 0.5678)))
    table = results_table(default, paper, baselines, fingerprint=baselines)
    lines = table.splitlines()
    assert "learned fingerprint alone" in lines[0] and len(lines) == 2 + len(SETS)
    noso = next(line for line in lines if line.startswith("| noso "))
    assert "0.883 / 0.971, img 0.950" in noso and "0.070 / 0.670" in noso and "0.123 / 0.568" in noso
    assert "manip. 3/4, auth. 0" in noso
    casia = next(line for line in lines if line.startswith("| casia1-dev |"))
    assert casia.count("| - |") >= 3  # no default, paper or fingerprint report for it
    assert "learned fingerprint" not in results_table(default, paper, baselines)  # the column only when asked

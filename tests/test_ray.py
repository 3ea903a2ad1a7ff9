"""``wsloc batch --ray``: the same batch on a local Ray instance started by the test."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import pytest
from skimage import data

from tests.contract_models import build_contract_model_set
from wsloc_runtime import cli

ray = pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "WSLOC_PROVIDERS": "CPUExecutionProvider"}})
    yield
    ray.shutdown()


def test_batch_on_ray_actors(local_ray, tmp_path, capsys):
    photos = tmp_path / "in"
    photos.mkdir()
    rgb = data.astronaut()
    for index in range(4):
        crop = rgb[index * 40 : index * 40 + 200, index * 40 : index * 40 + 240]
        cv2.imwrite(str(photos / f"p{index}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    models = build_contract_model_set(tmp_path / "models")
    out = tmp_path / "out"
    argv = ["-q", "batch", str(photos), "--out", str(out), "--models", str(models), "--ray", "--workers", "2"]

    assert cli.main(argv) == 1
    assert "broken.png" in capsys.readouterr().err
    with open(out / "results.csv", newline="") as stream:
        rows = {row["stem"]: row for row in csv.DictReader(stream)}
    assert set(rows) == {"broken", "p0", "p1", "p2", "p3"}
    assert rows["broken"]["error"]
    for stem in ("p0", "p1", "p2", "p3"):
        assert rows[stem]["error"] == "" and 0.0 <= float(rows[stem]["probability"]) <= 1.0
        assert (out / f"{stem}_mask.png").is_file() and (out / f"{stem}.json").is_file()

    # Resuming works the same way on Ray: nothing finished is redone.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    assert cli.main(argv) == 1
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")} == stamps

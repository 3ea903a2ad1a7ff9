"""wsloc_runtime imports and runs with TensorFlow and torch made impossible to import."""

import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT

BLOCKER = textwrap.dedent(
    """
    import sys, importlib.abc

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "torch", "keras", "tf2onnx", "torchvision"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    """
)


def run_isolated(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )


def test_plain_import_pulls_in_no_framework():
    completed = subprocess.run(
        [sys.executable, "-c",
         "import sys, wsloc_runtime, wsloc_runtime.pipeline, wsloc_runtime.cli, wsloc_runtime.segmenters;"
         "bad = [m for m in ('tensorflow', 'torch', 'keras') if m in sys.modules]; print(bad); sys.exit(bool(bad))"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_localizer_runs_with_frameworks_blocked(contract_models, tmp_path):
    completed = run_isolated(
        f"""
        import json
        from tests.conftest import make_splice
        from wsloc_runtime.pipeline import Localizer
        from wsloc_runtime.cli import main
        import cv2
        forged, _ = make_splice()
        result = Localizer({str(contract_models)!r}).localize(forged)
        cv2.imwrite({str(tmp_path / "f.png")!r}, forged[..., ::-1])
        code = main(["-q", "localize", {str(tmp_path / "f.png")!r}, "--out", {str(tmp_path / "out")!r},
                     "--models", {str(contract_models)!r}])
        print(json.dumps({{"p": result.probability, "code": code}}))
        """
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert '"code": 0' in completed.stdout
    assert (tmp_path / "out" / "f_mask.png").is_file()

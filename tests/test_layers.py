"""The runtime's layers (README, "Repository"): no module imports one of a higher layer, so the
package has no import circle (``batch`` and ``cli`` once imported each other)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wsloc_runtime"

#: Lowest first. A module may import its own layer and the layers below it. Subpackages are one
#: entry (``segmenters``, ``evidence``): their modules share the layer.
LAYERS = [
    ("foundation", {"errors"}),
    ("building blocks", {"__init__", "imageio", "sel", "jpeg_traces", "inputs", "config", "cam", "regions",
                         "metrics", "views", "viz", "models", "session", "wcbnet", "segmenters", "evidence",
                         "fusion", "file_evidence"}),
    ("pipeline", {"pipeline"}),
    ("results", {"wording", "outputs", "report", "options", "evaluate"}),
    ("batch", {"batch"}),
    ("commands", {"cli", "__main__"}),
]
LAYER_OF = {name: index for index, (_, names) in enumerate(LAYERS) for name in names}


def unit(module: str) -> str:
    """``wsloc_runtime.segmenters.sam`` -> ``segmenters``; ``wsloc_runtime`` -> ``__init__``."""
    parts = module.split(".")[1:]
    return parts[0] if parts else "__init__"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every ``wsloc_runtime`` module the file imports, at the top or inside functions."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "wsloc_runtime"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "wsloc_runtime":
                continue
            if node.module is None or target == "wsloc_runtime":  # from . import x: x may be a module
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    found.add(candidate if any(PACKAGE.parent.glob(candidate.replace(".", "/") + "*")) else target)
            else:
                found.add(target)
    return found


def runtime_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_runtime_module_has_a_layer():
    missing = sorted({unit(module_name(path)) for path in runtime_files()} - set(LAYER_OF))
    assert not missing, f"add {missing} to LAYERS here and to the README's Repository section"


def test_no_runtime_module_imports_a_higher_layer():
    wrong = []
    for path in runtime_files():
        importer = unit(module_name(path))
        for target in imported_modules(path):
            imported = unit(target)
            if imported in LAYER_OF and importer in LAYER_OF and LAYER_OF[imported] > LAYER_OF[importer]:
                wrong.append(f"{module_name(path)} ({LAYERS[LAYER_OF[importer]][0]}) imports {target} "
                             f"({LAYERS[LAYER_OF[imported]][0]})")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    batch = PACKAGE / "batch.py"
    assert "wsloc_runtime.outputs" in imported_modules(batch)
    assert "wsloc_runtime.errors" in imported_modules(PACKAGE / "segmenters" / "base.py")
    assert "wsloc_runtime" in imported_modules(PACKAGE / "pipeline.py")  # from . import __version__

"""The runtime's layers (docs/method.md, "Repository and the runtime's layers"): no module imports
one of a higher layer, so the package has no import circle (``batch`` and ``cli`` once imported
each other)."""

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
                         "fusion", "file_evidence", "provenance", "safe_text", "readability", "threads"}),
    ("pipeline", {"pipeline"}),
    ("results", {"wording", "outputs", "report", "options", "evaluate", "workbench"}),
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
    assert not missing, f"add {missing} to LAYERS here and to the layers list in docs/method.md"


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


# --------------------------------------------------------------------------- the whole repository

REPO = PACKAGE.parent
#: The folders and files whose imports are checked (tests import everything, so they are left out).
SOURCES = ("wsloc_runtime", "export", "training", "studies", "bench", "app.py")
#: Which top-level packages each may import (besides itself). ``studies`` is imported by nothing but
#: tests; ``export`` (building and converting models) never imports the trainer.
ALLOWED = {
    "wsloc_runtime": set(),
    "app": {"wsloc_runtime"},
    "export": {"wsloc_runtime"},
    "training": {"wsloc_runtime", "export"},
    "studies": {"wsloc_runtime", "export", "training"},
    "bench": {"wsloc_runtime", "export", "training"},
}


def repo_files() -> list[Path]:
    files = []
    for source in SOURCES:
        path = REPO / source
        files += [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
    return files


def repo_module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def local_modules() -> set[str]:
    return {repo_module_name(path) for path in repo_files()}


def repo_imports(path: Path, known: set[str]) -> set[str]:
    """Every module of the repository that ``path`` imports (top level or in functions, relative too)."""
    name = repo_module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def add(target: str) -> None:
        # ``import a.b.c`` of a module not in the repo's list (e.g. an attribute) counts as its nearest module.
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target:
            found.add(target)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in TOP_LEVEL:
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] not in TOP_LEVEL:
                continue
            for alias in node.names:  # from a import b: b may be a module
                candidate = f"{target}.{alias.name}"
                add(candidate if candidate in known else target)
    found.discard(name)
    return found


TOP_LEVEL = set(ALLOWED)


def top_level(module: str) -> str:
    return module.split(".")[0]


def import_graph() -> dict[str, set[str]]:
    known = local_modules()
    return {repo_module_name(path): repo_imports(path, known) for path in repo_files()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each one import circle or more."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_between_modules_anywhere():
    graph = import_graph()
    assert "export.efficientnet_lite" in graph and "training.train" in graph and "studies.verdict_band" in graph
    circles = cycles(graph)
    assert not circles, "import circles (each a set of modules importing one another):\n" + "\n".join(
        " <-> ".join(c) for c in circles)


def test_top_level_packages_import_only_downwards():
    wrong = []
    for module, targets in sorted(import_graph().items()):
        for target in sorted(targets):
            if top_level(target) != top_level(module) and top_level(target) not in ALLOWED[top_level(module)]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_package_graph_has_no_mutual_import():
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        packages.setdefault(top_level(module), set()).update(top_level(t) for t in targets)
    for package in packages:
        packages[package].discard(package)
    assert not cycles(packages), packages


def test_the_repo_checker_sees_what_it_should():
    known = local_modules()
    assert "export.runs" in repo_imports(REPO / "training" / "train.py", known)
    assert "training.data" in repo_imports(REPO / "studies" / "stem_report.py", known)  # inside a function
    assert "bench.common" in repo_imports(REPO / "bench" / "bench_batch.py", known)
    assert "wsloc_runtime.wording" in repo_imports(REPO / "app.py", known)
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []

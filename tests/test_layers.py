"""The import graph of ``volcal`` is a DAG that follows the layers of the design.

Every ``import`` statement of every module counts - at module level, inside functions
and under ``TYPE_CHECKING`` alike - because an import deferred into a function is still
a dependency: a cycle held together by function-level imports is a cycle.

Layers, each importing only from itself and the layers before it (the design's list:
data flows one way, feed -> chain -> quality -> calibration -> surface -> risk/store/
stream/serve -> report -> cli)::

    _version, _typing, errors, _io, _lazy  ->  market  ->  feeds  ->  black  ->  models  ->  quality
    ->  aggregate  ->  pricing  ->  calibration  ->  synthetic  ->  surface  ->  risk
    ->  store  ->  history  ->  stream  ->  serve  ->  report  ->  volcal (facade)  ->  cli

The package facade ``volcal/__init__.py`` reaches everything by name through
``importlib`` and is itself imported only by the command line.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "volcal"

LAYERS: tuple[str, ...] = (
    "_version",
    "_typing",
    "errors",
    "_io",
    "_lazy",
    "market",
    "feeds",
    "black",
    "models",
    "quality",
    "aggregate",
    "pricing",
    "calibration",
    "synthetic",
    "surface",
    "risk",
    "store",
    "history",
    "stream",
    "serve",
    "report",
    "__init__",  # the facade: ``import volcal``
    "cli",
    "__main__",
)

# Upward edges allowed on purpose, each inside one function (never at module level, so
# importing the lower module never imports the upper one) and never part of a cycle:
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    ("volcal.calibration.result", "volcal.surface.volsurface"): (
        "CalibrationResult.surface(): the fit as a VolSurface, the convenience users "
        "reach for; VolSurface itself does not import the calibration layer"
    ),
}


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph(src: Path = SRC) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """``(edges, module_level)``: every volcal module -> the volcal modules it imports,
    and the subset of edges made by module-level statements."""
    modules = {module_name(p, src): p for p in src.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    top_level: set[tuple[str, str]] = set()
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules]
                targets = subs + ([mod] if len(subs) < len(node.names) else [])
            for t in targets:
                # ``import volcal.x.y`` binds and imports ``volcal.x.y``; keep the deepest
                # volcal module that exists
                while t and t not in modules and "." in t:
                    t = t.rpartition(".")[0]
                if t in modules and t != name:
                    edges[name].add(t)
                    if id(node) in top:
                        top_level.add((name, t))
    return edges, top_level


def layer_of(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter({a: set(b) for a, b in edges.items()}).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def upward_edges(edges: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    rank = {name: i for i, name in enumerate(LAYERS)}
    out = []
    for a, targets in edges.items():
        for b in targets:
            la, lb = layer_of(a), layer_of(b)
            if la not in rank or lb not in rank:
                raise AssertionError(f"{a} or {b} is in no layer: add it to LAYERS")
            if rank[lb] > rank[la]:
                out.append((a, b))
    return sorted(out)


def test_every_module_is_in_a_layer() -> None:
    edges, _ = import_graph()
    assert len(edges) > 100
    missing = sorted({layer_of(m) for m in edges} - set(LAYERS))
    assert not missing, f"modules outside every layer: {missing}"


def test_import_graph_has_no_cycle() -> None:
    edges, _ = import_graph()
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_goes_up_a_layer() -> None:
    edges, top_level = import_graph()
    up = upward_edges(edges)
    unexpected = [e for e in up if e not in ALLOWED_UPWARD]
    assert not unexpected, "imports from a later layer: " + ", ".join(
        f"{a} -> {b}" for a, b in unexpected
    )
    at_module_level = [e for e in up if e in top_level]
    assert not at_module_level, f"allowed upward imports must stay in a function: {at_module_level}"
    # the allowance is not stale: each entry is still an edge of the graph
    assert set(ALLOWED_UPWARD) <= set(up)


def test_only_the_command_line_imports_the_facade() -> None:
    edges, _ = import_graph()
    users = sorted(a for a, b in edges.items() if "volcal" in b and layer_of(a) != "cli")
    assert users == [], f"library modules importing the volcal facade: {users}"


# ---------------------------------------------------------------- the checks can fail
def test_checker_finds_a_function_level_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "volcal"
    (pkg / "quality").mkdir(parents=True)
    (pkg / "calibration").mkdir()
    for d in (pkg, pkg / "quality", pkg / "calibration"):
        (d / "__init__.py").write_text("")
    (pkg / "quality" / "clean.py").write_text(
        "def f():\n    from volcal.calibration.svi import g\n    return g\n"
    )
    (pkg / "calibration" / "svi.py").write_text(
        "from volcal.quality import clean\n\ndef g():\n    return clean\n"
    )
    edges, top_level = import_graph(pkg)
    assert edges["volcal.quality.clean"] == {"volcal.calibration.svi"}
    assert edges["volcal.calibration.svi"] == {"volcal.quality.clean"}
    assert ("volcal.quality.clean", "volcal.calibration.svi") not in top_level
    assert find_cycle(edges) is not None
    assert upward_edges(edges) == [("volcal.quality.clean", "volcal.calibration.svi")]


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("from volcal.black import price", "volcal.black"),
        ("from volcal.black import pricing", "volcal.black.pricing"),
        ("import volcal.black.pricing as bp", "volcal.black.pricing"),
        ("from ..black import pricing", "volcal.black.pricing"),
    ],
)
def test_checker_resolves_import_forms(tmp_path: Path, source: str, target: str) -> None:
    pkg = tmp_path / "volcal"
    (pkg / "feeds").mkdir(parents=True)
    (pkg / "black").mkdir()
    for d in (pkg, pkg / "feeds", pkg / "black"):
        (d / "__init__.py").write_text("")
    (pkg / "black" / "pricing.py").write_text("price = 1\n")
    (pkg / "feeds" / "reader.py").write_text(
        f"from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    {source}\n"
    )
    edges, _ = import_graph(pkg)
    assert edges["volcal.feeds.reader"] == {target}
    assert upward_edges(edges) == [("volcal.feeds.reader", target)]  # feeds sit below black

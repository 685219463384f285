"""The package's layers, read from the source: who may import whom, and module size.

Decoding, export and serving sit beside training, not above it: they read
checkpoints through ``asrk2.checkpoint`` and ``asrk2.experiment``, so none of
them imports ``asrk2.train``. Test fixtures live in ``asrk2.testing`` and
nothing else in the package imports them. The TorchScript loader must run
without the model code.
"""

import ast
from pathlib import Path
from typing import Dict, Set

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "asrk2"
MAX_MODULE_LINES = 600


def _imports(path: Path) -> Set[str]:
    """Every module an ``import`` or ``from ... import`` in ``path`` names."""
    names: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules() -> Dict[str, Path]:
    return {
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts): p
        for p in sorted(PACKAGE.rglob("*.py"))
    }


def _importers(target: str, under: str) -> Set[str]:
    return {
        name
        for name, path in _modules().items()
        if name.startswith(under)
        and any(i == target or i.startswith(target + ".") for i in _imports(path))
    }


@pytest.mark.parametrize("layer", ["asrk2.decode", "asrk2.export", "asrk2.serve"])
def test_decoding_export_and_serving_never_import_training(layer):
    assert _importers("asrk2.train", layer) == set()


def test_only_tests_and_benchmarks_use_the_fixtures():
    users = _importers("asrk2.testing", "asrk2")
    assert {u for u in users if not u.startswith("asrk2.testing")} == set()


def test_the_torchscript_loader_needs_no_model_code():
    assert _importers("asrk2.model", "asrk2.export.load") == set()
    assert _importers("asrk2.train", "asrk2.export.load") == set()


def test_no_module_is_over_the_size_limit():
    sizes = {n: len(p.read_text().splitlines()) for n, p in _modules().items()}
    assert {n: s for n, s in sizes.items() if s > MAX_MODULE_LINES} == {}


def test_the_checker_sees_imports():
    """The rules above would pass vacuously if _imports found nothing."""
    assert _importers("asrk2.train", "asrk2.train.trainer") == {"asrk2.train.trainer"}
    assert "asrk2.export.build" in _importers("asrk2.checkpoint", "asrk2.export")

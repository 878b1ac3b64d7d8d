"""The package layout: the library imports no network, compression, plotting or progress-bar module
(and not the data package) until asked; the batteries keep small modules and no private
cross-module imports."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinygrad_lite"
BATTERIES = ("nn", "optim", "data")
HEAVY = ("http.client", "urllib.request", "gzip", "hashlib", "matplotlib", "tqdm", "tinygrad_lite.data")
MAX_LINES = 400


def loaded_after(statement: str) -> list[str]:
    """Which of ``HEAVY`` a fresh interpreter has in ``sys.modules`` after running ``statement``."""
    code = f"import sys, json\n{statement}\nprint(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_library_loads_no_heavy_module():
    assert loaded_after("import tinygrad_lite, tinygrad_lite.nn, tinygrad_lite.optim") == []


def test_the_check_sees_the_data_package_and_it_loads_on_first_use():
    loaded = loaded_after("import tinygrad_lite\nassert tinygrad_lite.data.load_dataset")
    assert {"tinygrad_lite.data", "http.client", "urllib.request", "gzip", "hashlib"} <= set(loaded)


def modules():
    return sorted(p for b in BATTERIES for p in (PACKAGE / b).rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_battery_modules_are_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (more than {MAX_LINES}): split it"


def private_imports(source: str) -> list[str]:
    """``from X import _name`` (or ``import X._y``) in ``source``: private names taken from another module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            found += [f"from {'.' * node.level}{node.module or ''} import {a.name}"
                      for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if any(p.startswith("_") for p in a.name.split("."))]
    return found


def test_the_private_import_check_can_fail():
    assert private_imports("from .nn.utils import _key_problems\nimport a._b\nfrom . import x") == [
        "from .nn.utils import _key_problems", "import a._b"]


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_battery_modules_import_no_private_names(path):
    assert private_imports(path.read_text(encoding="utf-8")) == []

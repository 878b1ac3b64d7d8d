"""Smoke tests of the benchmark suite: ``python -m benchmarks --quick`` runs end to end and writes valid JSON.

No timing is asserted (machines differ); only that every section runs, prints its tables with
the BLAS tag, and that the JSON holds the same tables. The comparison frameworks are left out
so the test takes a few seconds whether or not the ``bench`` extra is installed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ["step", "epoch", "overhead", "memory", "gradcheck", "scaling", "hvp"]


# One BLAS thread: on a busy shared 2-core machine a 2-thread OpenBLAS can be 20x slower on these small
# matrices, and this test only checks that the suite runs. (OPENBLAS_CORETYPE and friends are left alone.)
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _run(tmp_path: Path, *args: str) -> tuple[str, dict]:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args, "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=ENV,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, json.loads(out.read_text())


def _finite_numbers(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite_numbers(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite_numbers(v) for v in value)
    return True


def test_quick_run_end_to_end_writes_valid_json(tmp_path: Path) -> None:
    stdout, data = _run(tmp_path, "--quick", "--repeats", "1", "--frameworks", "tinygrad_lite")
    assert "BLAS" in stdout and "machine" in stdout
    assert data["quick"] is True
    assert list(data["sections"]) == SECTIONS
    meta = data["meta"]
    assert {"machine", "versions", "blas"} <= set(meta)
    assert meta["versions"]["numpy"]
    for name, section in data["sections"].items():
        assert section["tables"], name
        for table in section["tables"]:
            assert table["title"] in stdout
            assert table["blas"].startswith("BLAS:")
            assert table["rows"], table["title"]
            assert all(len(row) == len(table["columns"]) for row in table["rows"]), table["title"]
            assert len(table["records"]) == len(table["rows"])
        assert _finite_numbers(section["tables"]), name

    step = data["sections"]["step"]["tables"][0]["records"]
    frameworks = [r["framework"] for r in step]
    assert frameworks == ["manual", "tinygrad_lite"]
    assert step[0]["x manual b=64"] == 1.0
    # the sanity check ran and agreed: same loss from the same weights and batch
    assert data["sections"]["step"]["raw"]["64"]["sanity"]["ok"] is True
    # the graph is freed: only the 6 parameters stay alive between steps
    growth = data["sections"]["memory"]["tables"][1]["records"]
    assert [r["live Tensors"] for r in growth if r["framework"] == "tinygrad_lite"] == [6, 6]


def test_only_selects_sections_and_unknown_names_fail(tmp_path: Path) -> None:
    _, data = _run(tmp_path, "--quick", "--repeats", "1", "--frameworks", "tinygrad_lite", "--only", "overhead")
    assert list(data["sections"]) == ["overhead"]
    _, data = _run(tmp_path, "--quick", "--repeats", "1", "--frameworks", "tinygrad_lite", "--only", "step",
                   "--batches", "8,32")
    assert list(data["sections"]["step"]["raw"]) == ["8", "32"]
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "nope"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=ENV)
    assert proc.returncode == 2 and "unknown section" in proc.stderr


def test_missing_framework_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import frameworks as fw
    from benchmarks.sections import Config, section_overhead

    monkeypatch.setattr(fw, "installed", lambda name: name in ("manual", "tinygrad_lite"))
    result = section_overhead(Config(quick=True, repeats=1, frameworks=["tinygrad_lite", "torch"], min_time=0.001))
    rows = result.tables[0].to_dict()["records"]
    torch_rows = [r for r in rows if r["framework"] == "torch"]
    assert torch_rows and all(r["us/call"] == "not installed" for r in torch_rows)

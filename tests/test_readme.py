"""The README's Python examples run as written, in order, in one namespace (as a reader would
paste them), and do what the text around them says."""

import re
from pathlib import Path

import numpy as np
import pytest

import tinygrad_lite as tg

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    """Every ```python block of the README, executed in order (files land in a temporary folder)."""
    import os

    ns: dict = {}
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("readme"))
    try:
        for i, block in enumerate(python_blocks()):
            try:
                exec(compile(block, f"README.md python block {i + 1}", "exec"), ns)
            except Exception as exc:  # pragma: no cover - the failure message is the point
                raise AssertionError(f"README python block {i + 1} failed: {exc!r}\n{block}") from exc
    finally:
        os.chdir(cwd)
    return ns


def test_the_readme_has_python_examples():
    assert len(python_blocks()) >= 6


def test_every_python_block_runs(namespace):
    assert "loss" in namespace and "model" in namespace


def test_in_place_update_example_changes_the_same_tensor(namespace):
    W = namespace["W"]
    assert W.requires_grad and W.version >= 1


def test_twice_differentiable_and_first_order_only_ops_behave_as_described(namespace):
    cube, first_order_only = namespace["cube"], namespace["first_order_only"]
    x = tg.Tensor(np.array([0.5, -2.0]), requires_grad=True)
    (g,) = tg.grad(cube(x).sum(), x, create_graph=True)
    (h,) = tg.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, 6 * x.data)
    (g1,) = tg.grad(first_order_only(x).sum(), x)  # first order is fine
    np.testing.assert_allclose(g1.data, 3 * x.data**2)
    (g,) = tg.grad(first_order_only(x).sum(), x, create_graph=True)
    with pytest.raises(TypeError, match="cannot differentiate op 'first_order_only' twice.*numpy.add.at"):
        tg.grad(g.sum(), x)


def test_higher_order_example_values(namespace):
    np.testing.assert_allclose(namespace["h"].data, 6 * np.array([0.5, -1.0, 2.0]))

"""np.einsum on Tensors: values equal NumPy's, gradients pass gradcheck, to second order."""

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite import Tensor
from tinygrad_lite.einsum import einsum, explicit_subscripts
from tinygrad_lite.gradcheck import GradcheckError, gradcheck

CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),  # matmul
    ("ij,jk", [(2, 3), (3, 4)]),  # implicit output
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),  # batched matmul
    ("i,j->ij", [(3,), (4,)]),  # outer
    ("i,i->", [(3,), (3,)]),  # inner
    ("ii->", [(3, 3)]),  # trace
    ("ii", [(3, 3)]),  # trace, implicit
    ("ii->i", [(3, 3)]),  # diagonal
    ("iij->j", [(3, 3, 2)]),  # partial trace
    ("iii->i", [(2, 2, 2)]),
    ("ij->", [(2, 3)]),  # sum
    ("ij->j", [(2, 3)]),  # column sums
    ("ij->ji", [(2, 3)]),  # transpose
    ("ij,ij->ij", [(2, 3), (2, 3)]),  # elementwise product
    ("...ij,...jk->...ik", [(2, 3), (4, 3, 2)]),  # ellipsis, broadcast batch
    ("...ij,...jk->...ik", [(1, 2, 3), (4, 3, 2)]),  # ellipsis, size-1 batch
    ("i...->...", [(3, 2, 2)]),
    ("...i,i", [(2, 3), (3,)]),  # implicit with ellipsis
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),  # three operands
    ("ij,jk,ik->", [(2, 3), (3, 4), (2, 4)]),
    ("ij,kl->", [(2, 2), (1, 3)]),  # letters only in one operand
    ("i,i->", [(1,), (3,)]),  # a size-1 axis broadcast against 3
    ("aB,Bc", [(2, 3), (3, 2)]),  # mixed case, implicit
]


def _draw(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("spec, shapes", CASES)
def test_values_and_gradients(spec, shapes):
    xs = _draw(shapes)
    out = np.einsum(spec, *[Tensor(x) for x in xs])
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(out.data, np.einsum(spec, *xs), rtol=1e-12, atol=1e-12)
    weight = np.random.default_rng(1).standard_normal(out.shape)  # a non-uniform cotangent
    assert gradcheck(lambda *a: np.einsum(spec, *a) * weight, xs)


SECOND_ORDER = ["ij,jk->ik", "bij,bjk->bik", "ii->", "iij->j", "...ij,...jk->...ik", "ij,jk,kl->il", "i,i->"]


@pytest.mark.parametrize("spec, shapes", [c for c in CASES if c[0] in SECOND_ORDER])
def test_second_order(spec, shapes):
    def grad_norm(*a):
        with tg.enable_grad():  # gradcheck evaluates under no_grad
            loss = np.sum(np.tanh(np.einsum(spec, *a)))
            grads = tg.grad(loss, list(a), create_graph=True)
            return sum(np.sum(g * g) for g in grads)

    assert gradcheck(grad_norm, [Tensor(x, requires_grad=True) for x in _draw(shapes, seed=2)])


def test_mixed_operands_interleaved_form_and_methods():
    a, b = _draw([(2, 3), (3, 4)])
    ta = Tensor(a, requires_grad=True)
    out = np.einsum("ij,jk->ik", ta, b)  # Tensor with ndarray
    np.testing.assert_allclose(out.data, a @ b)
    (g,) = tg.grad(np.sum(out * out), [ta])
    np.testing.assert_allclose(g.data, 2 * (a @ b) @ b.T)
    np.testing.assert_allclose(np.einsum(ta, [0, 1], b, [1, 2], [0, 2]).data, a @ b)
    np.testing.assert_allclose(np.einsum(ta, [Ellipsis, 1], b, [1, 2]).data, a @ b)
    np.testing.assert_allclose(einsum("ij,jk", a, b).data, a @ b)  # arrays only: a constant Tensor
    np.testing.assert_allclose(np.einsum("ij->", ta, optimize=True).data, a.sum())


def test_float32_stays_float32():
    a, b = (x.astype(np.float32) for x in _draw([(2, 3), (3, 4)]))
    ta = Tensor(a, requires_grad=True)
    out = np.einsum("ij,jk->ik", ta, b)
    assert out.dtype == np.float32
    out.sum().backward()
    assert ta.grad.dtype == np.float32


def test_wrong_gradient_would_be_caught():
    """The gradchecks above can fail: an einsum with a wrong VJP does not pass."""
    spec = "ij,jk->ik"
    xs = _draw([(2, 3), (3, 4)])

    @tg.defop
    def bad(a, b):
        return np.einsum(spec, a, b), (lambda g: np.einsum("ik,jk->ij", g, b) * 1.01, lambda g: a.T @ g)

    with pytest.raises(GradcheckError):
        gradcheck(bad, xs)


@pytest.mark.parametrize("call, message", [
    (lambda t: np.einsum("ij,jk->ik", t), "name 2 operand"),
    (lambda t: np.einsum("ijk->", t), "has 2 dimension"),
    (lambda t: np.einsum("ij->ik", t), "use one no operand has"),
    (lambda t: np.einsum("ij->ii", t), "repeat a letter"),
    (lambda t: np.einsum("i.j->", t), "'.' outside one '...'"),
    (lambda t: np.einsum("ij->i->j", t), "invalid subscripts"),
    (lambda t: np.einsum("i1->", t), "invalid subscripts"),
    (lambda t: np.einsum("...->", Tensor(np.ones((2, 2, 2)))), "needs '...'"),
])
def test_bad_subscripts(call, message):
    with pytest.raises(ValueError, match=message):
        call(Tensor(np.ones((2, 3))))


def test_out_and_dtype_are_refused():
    t = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(TypeError, match="numpy.einsum with out= or dtype="):
        np.einsum("ij->", t, out=np.zeros(()))
    with pytest.raises(TypeError, match="numpy.einsum with out= or dtype="):
        np.einsum("ij->", t, dtype=np.float32)


def test_explicit_subscripts():
    assert explicit_subscripts("ij,jk", [(2, 3), (3, 4)]) == (["ij", "jk"], "ik")
    assert explicit_subscripts("aB", [(2, 3)]) == (["aB"], "Ba")  # ASCII order, as NumPy
    terms, out = explicit_subscripts("...ij,j...", [(5, 2, 3), (3, 5)])
    assert terms[0][1:] == "ij" and terms[1][0] == "j" and out == terms[0][0] + "i"
    with pytest.raises(TypeError, match="must be a str"):
        explicit_subscripts(3, [(2,)])

"""ops.reduce: values against NumPy or plain loops (over drawn shapes, negative, tuple and list
axes, both spellings of axis/keepdims), first and second derivatives against finite differences,
exact gradients of prod/cumprod with zeros, PyTorch's choices at ties (amax shares, cummax takes
the last index, topk/sort/max_dim the index they return), float32 kept, NumPy calls on Tensors,
and bad arguments named in the error."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tg
from tinygrad_lite import Tensor
from tinygrad_lite.autograd import grad
from tinygrad_lite.ops import reduce as R
from tinygrad_lite.testing import assert_grads_match, assert_second_grads_match
from tinygrad_lite.testing.strategies import arrays, away_from_kinks, shapes

SMALL = shapes(min_dims=1, max_dims=2, max_side=3)  # for Jacobians: at most 9 elements
VALUES = shapes(min_dims=1, max_dims=3, max_side=4)


def first_grad(fn, x, g=None):
    """∂ Σ(w ⊙ fn(x)) / ∂x for a non-uniform cotangent w (or the given g)."""
    t = Tensor(x, requires_grad=True)
    out = fn(t)
    w = np.linspace(-1.0, 2.0, out.size).reshape(out.shape) if g is None else g
    return out, grad((out * Tensor(w.astype(out.dtype))).sum(), t)[0]


@st.composite
def axes_for(draw, ndim):
    """None, an int, a tuple or a list of distinct axes (some negative)."""
    kind = draw(st.sampled_from(["none", "int", "tuple", "list"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    picked = draw(st.lists(st.integers(0, ndim - 1), unique=True, min_size=1, max_size=ndim))
    signed = [a - ndim if draw(st.booleans()) else a for a in picked]
    return tuple(signed) if kind == "tuple" else signed


@st.composite
def reduction_case(draw, shape=VALUES, values=None):
    """(x, options in NumPy's or PyTorch's spelling, the axis as NumPy takes it, keepdims)."""
    x = draw(arrays(shape=shape) if values is None else values(draw(shape)))
    axis = draw(axes_for(x.ndim))
    keep = draw(st.booleans())
    options = {"dim": axis, "keepdim": keep} if draw(st.booleans()) else {"axis": axis, "keepdims": keep}
    return x, options, (tuple(axis) if isinstance(axis, list) else axis), keep


@st.composite
def scan_case(draw, shape=VALUES, values=None):
    """(x, options, the axis as NumPy takes it): one axis, negative sometimes, or None (flattened)."""
    x = draw(arrays(shape=shape) if values is None else values(draw(shape)))
    axis = draw(st.none() | st.integers(-x.ndim, x.ndim - 1))
    options = {} if axis is None else ({"dim": axis} if draw(st.booleans()) else {"axis": axis})
    return x, options, axis


def distinct(shape):
    return away_from_kinks(shape=shape, distinct=True, margin=0.05)


def count(shape, axis):
    if axis is None:
        return math.prod(shape)
    return math.prod(shape[a] for a in (axis if isinstance(axis, tuple) else (axis,)))


# ----------------------------------------------------------------- values
@given(reduction_case(values=lambda s: arrays(shape=s, low=-1.5, high=1.5)))
def test_prod_amax_amin_equal_numpy(case):
    x, options, axis, keep = case
    np.testing.assert_allclose(R.prod(x, **options).data, np.prod(x, axis=axis, keepdims=keep), rtol=1e-12)
    np.testing.assert_array_equal(R.amax(x, **options).data, np.amax(x, axis=axis, keepdims=keep))
    np.testing.assert_array_equal(R.amin(x, **options).data, np.amin(x, axis=axis, keepdims=keep))


@given(reduction_case(), st.sampled_from([0, 1, 2]), st.sampled_from(["correction", "ddof"]))
def test_var_std_equal_numpy_with_ddof(case, c, spelling):
    x, options, axis, keep = case
    if count(x.shape, axis) <= c:
        c = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_allclose(R.var(x, **options, **{spelling: c}).data,
                                   np.var(x, axis=axis, keepdims=keep, ddof=c), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(R.std(x, **options, **{spelling: c}).data,
                                   np.std(x, axis=axis, keepdims=keep, ddof=c), rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Degrees of freedom")  # NumPy's own, for the reference
def test_var_std_default_to_pytorchs_correction_and_numpy_calls_to_ddof_0():
    x = np.array([[1.0, 2.0, 4.0], [0.0, -1.0, 3.0]])
    np.testing.assert_allclose(R.var(x).data, np.var(x, ddof=1))
    np.testing.assert_allclose(R.std(x, 1).data, np.std(x, axis=1, ddof=1))
    np.testing.assert_allclose(R.var(x, unbiased=False).data, np.var(x))
    np.testing.assert_allclose(np.var(Tensor(x)).data, np.var(x))  # NumPy's default on Tensors: ddof=0
    np.testing.assert_allclose(np.std(Tensor(x), axis=0, ddof=1).data, np.std(x, axis=0, ddof=1))
    with np.errstate(divide="ignore", invalid="ignore"):  # n − correction ≤ 0: inf/nan as NumPy
        np.testing.assert_array_equal(R.var(x, axis=0, correction=2).data, np.var(x, axis=0, ddof=2))


def norm_reference(x, p, axis, keep):
    a = np.abs(x)
    if p == np.inf:
        return a.max(axis=axis, keepdims=keep)
    if p == -np.inf:
        return a.min(axis=axis, keepdims=keep)
    if p == 0:
        return (x != 0).sum(axis=axis, keepdims=keep).astype(float)
    return (a**p).sum(axis=axis, keepdims=keep) ** (1 / p)


@given(reduction_case(), st.sampled_from([2, "fro", 1, np.inf, -np.inf, 0, 3, 1.5]))
def test_norm_equals_the_formula(case, p):
    x, options, axis, keep = case
    expected = norm_reference(x, 2 if p == "fro" else p, axis, keep)
    np.testing.assert_allclose(R.norm(x, p, **options).data, expected, rtol=1e-12)


def test_norm_matches_numpy_linalg_norm_where_both_are_vector_norms():
    x = np.array([[3.0, -4.0, 0.0], [1.0, 2.0, -2.0]])
    np.testing.assert_allclose(R.norm(x).data, np.linalg.norm(x))
    for p in (1, 2, np.inf, -np.inf, 0, 3):
        np.testing.assert_allclose(R.norm(x, p, 1).data, np.linalg.norm(x, ord=p, axis=1))
    np.testing.assert_allclose(np.linalg.norm(Tensor(x), axis=(0, 1), ord="fro").data, np.linalg.norm(x, "fro"))
    np.testing.assert_allclose(np.linalg.norm(Tensor(x), ord=1, axis=0).data, np.linalg.norm(x, ord=1, axis=0))
    with pytest.raises(TypeError, match="linalg.norm with ord=1 over 2 axes"):
        np.linalg.norm(Tensor(x), ord=1)  # NumPy's matrix 1-norm is not a vector norm


@given(scan_case())
def test_cumsum_cumprod_equal_numpy(case):
    x, options, axis = case
    np.testing.assert_allclose(R.cumsum(x, **options).data, np.cumsum(x, axis=axis), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(R.cumprod(x, **options).data, np.cumprod(x, axis=axis), rtol=1e-12, atol=1e-12)


def logcumsumexp_reference(x, axis):
    """log Σ_{j≤i} e^{x_j}, each prefix shifted by its own max (a loop over prefixes)."""
    if axis is None:
        x, axis = x.reshape(-1), 0
    xm = np.moveaxis(x, axis, -1)
    out = np.empty_like(xm)
    for i in range(xm.shape[-1]):
        top = xm[..., : i + 1].max(axis=-1, keepdims=True)
        out[..., i] = (np.log(np.exp(xm[..., : i + 1] - top).sum(axis=-1, keepdims=True)) + top)[..., 0]
    return np.moveaxis(out, -1, axis)


@given(scan_case(values=lambda s: arrays(shape=s, low=-800, high=800)))
def test_logcumsumexp_is_stable_and_equals_a_loop(case):
    x, options, axis = case
    expected = logcumsumexp_reference(x, axis)  # log of a sum near 1 loses ~1e-16 absolute: atol
    np.testing.assert_allclose(R.logcumsumexp(x, **options).data, expected, rtol=1e-12, atol=1e-14)


def test_logcumsumexp_with_infinities():
    x = np.array([-np.inf, -np.inf, 0.0, np.inf, 1.0])
    np.testing.assert_array_equal(R.logcumsumexp(x, 0).data, [-np.inf, -np.inf, 0.0, np.inf, np.inf])
    x = np.array([-np.inf, -np.inf, 0.0, 1.0])
    _, g = first_grad(lambda t: R.logcumsumexp(t, 0), x, g=np.array([1.0, 2.0, 0.5, -1.0]))
    expected = [0.0, 0.0, 0.5 - math.exp(0 - np.logaddexp(0, 1)), -math.exp(1 - np.logaddexp(0, 1))]
    np.testing.assert_allclose(g.data, expected, rtol=1e-14)


def running_reference(x, axis, largest):
    """PyTorch's cummax/cummin loop: a later element takes over when it is NaN or, the running
    value not being NaN, when it is >= (<=) it."""
    if axis is None:
        x, axis = x.reshape(-1), 0
    xm = np.moveaxis(x, axis, -1)
    values, indices = np.empty_like(xm), np.empty(xm.shape, dtype=np.int64)
    for pos in np.ndindex(xm.shape[:-1]):
        best, at = xm[pos][0], 0
        for i, v in enumerate(xm[pos]):
            if np.isnan(v) or (not np.isnan(best) and (v >= best if largest else v <= best)):
                best, at = v, i
            values[pos + (i,)], indices[pos + (i,)] = best, at
    return np.moveaxis(values, -1, axis), np.moveaxis(indices, -1, axis)


TIES = st.sampled_from([-1.0, 0.0, 1.0, 2.0, np.nan])  # few values: ties and NaN are common


@given(scan_case(values=lambda s: arrays(shape=s, elements=TIES)), st.booleans())
def test_cummax_cummin_follow_pytorchs_loop_at_ties_and_nan(case, largest):
    x, options, axis = case
    values, indices = (R.cummax if largest else R.cummin)(x, **options)
    expected_values, expected_indices = running_reference(x, axis, largest)
    np.testing.assert_array_equal(values.data, expected_values)
    np.testing.assert_array_equal(indices.data, expected_indices)
    assert indices.dtype == np.int64 and not indices.requires_grad


def stable_order(row, descending):
    """Python's sorted is stable: equal values keep their order."""
    return sorted(range(len(row)), key=lambda i: -row[i] if descending else row[i])


@given(scan_case(values=lambda s: arrays(shape=s, elements=st.sampled_from([-1.0, 0.0, 0.5, 2.0]))),
       st.booleans())
def test_sort_argsort_are_stable_in_both_directions(case, descending):
    x, options, axis = case
    if axis is None:  # PyTorch's sort takes dim=-1 by default
        axis = -1
    values, indices = R.sort(x, descending=descending, **options)
    xm = np.moveaxis(x, axis, -1)
    expected = np.empty(xm.shape, dtype=np.int64)
    for pos in np.ndindex(xm.shape[:-1]):
        expected[pos] = stable_order(xm[pos], descending)
    expected = np.moveaxis(expected, -1, axis)
    np.testing.assert_array_equal(indices.data, expected)
    np.testing.assert_array_equal(values.data, np.take_along_axis(x, expected, axis))
    np.testing.assert_array_equal(R.argsort(x, descending=descending, **options).data, expected)


def test_sort_puts_nan_last_and_first_when_descending():
    x = np.array([1.0, np.nan, 3.0, np.nan])
    np.testing.assert_array_equal(R.sort(x).indices.data, [0, 2, 1, 3])
    np.testing.assert_array_equal(R.sort(x, descending=True).indices.data, [1, 3, 2, 0])


@given(scan_case(values=lambda s: arrays(shape=s, elements=st.sampled_from([-1.0, 0.0, 0.5, 2.0]))),
       st.data(), st.booleans(), st.booleans())
def test_topk_takes_the_k_extreme_lowest_index_first(case, data, largest, is_sorted):
    x, options, axis = case
    if axis is None:
        axis = -1
    k = data.draw(st.integers(0, x.shape[axis]))
    values, indices = R.topk(x, k, largest=largest, sorted=is_sorted, **options)
    xm = np.moveaxis(x, axis, -1)
    expected = np.empty(xm.shape[:-1] + (k,), dtype=np.int64)
    for pos in np.ndindex(xm.shape[:-1]):
        chosen = stable_order(xm[pos], largest)[:k]
        expected[pos] = chosen if is_sorted else sorted(chosen)
    expected = np.moveaxis(expected, -1, axis)
    np.testing.assert_array_equal(indices.data, expected)
    np.testing.assert_array_equal(values.data, np.take_along_axis(x, expected, axis))


@given(arrays(shape=VALUES, elements=st.sampled_from([-1.0, 0.0, 2.0])), st.data(), st.booleans())
def test_max_dim_min_dim_return_the_first_index(x, data, keep):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    for op, ref, arg in ((R.max_dim, np.max, np.argmax), (R.min_dim, np.min, np.argmin)):
        values, indices = op(x, axis, keep)
        np.testing.assert_array_equal(values.data, ref(x, axis=axis, keepdims=keep))
        np.testing.assert_array_equal(indices.data, arg(x, axis=axis, keepdims=keep))


def test_zero_dimensional_inputs_are_one_element_as_in_pytorch():
    x = np.array(2.5)
    assert R.cumsum(x, 0).shape == () and R.cumsum(x).shape == (1,)  # no axis: flattened, as np.cumsum
    for result in (R.sort(x), R.cummax(x, -1), R.max_dim(x, 0), R.topk(x, 1)):
        assert result.values.shape == result.indices.shape == () and result.values.item() == 2.5
    assert R.argsort(x).shape == () and R.prod(x).item() == 2.5


def test_empty_inputs():
    e = np.zeros((0, 3))
    np.testing.assert_array_equal(R.prod(e, axis=0).data, np.ones(3))
    assert R.cumprod(e, 0).shape == (0, 3) and R.sort(e, 0).values.shape == (0, 3)
    assert R.topk(e, 0, dim=0).values.shape == (0, 3)
    _, g = first_grad(lambda t: R.cumprod(t, 0), e)
    assert g.shape == (0, 3)


# ------------------------------------------------------- first derivatives
@given(reduction_case(shape=SMALL))
def test_prod_var_first_derivatives(case):
    x, options, _, _ = case
    assert_grads_match(lambda t: R.prod(t, **options), x)
    assert_grads_match(lambda t: R.var(t, **options, correction=0), x)


@given(reduction_case(shape=SMALL, values=distinct))
def test_std_amax_amin_first_derivatives_away_from_ties(case):
    x, options, axis, _ = case
    assert_grads_match(lambda t: R.amax(t, **options), x)
    assert_grads_match(lambda t: R.amin(t, **options), x)
    if count(x.shape, axis) > 1:
        assert_grads_match(lambda t: R.std(t, **options), x)


@st.composite
def signed_distinct_magnitudes(draw, shape):
    """Values whose magnitudes differ and stay away from 0 (the ∞-norm's and |x|'s kinks)."""
    magnitude = draw(away_from_kinks(shape=shape, distinct=True, low=0.2, high=3.0, margin=0.05))
    signs = draw(arrays(shape=magnitude.shape, elements=st.sampled_from([-1.0, 1.0])))
    return np.abs(magnitude) * signs


@given(reduction_case(shape=SMALL, values=signed_distinct_magnitudes), st.sampled_from([2, 1, np.inf, -np.inf, 3, 1.5]))
def test_norm_first_derivatives(case, p):
    x, options, _, _ = case
    assert_grads_match(lambda t: R.norm(t, p, **options), x)


@given(scan_case(shape=SMALL))
def test_scan_first_derivatives(case):
    x, options, _ = case
    for op in (R.cumsum, R.cumprod, R.logcumsumexp):
        assert_grads_match(lambda t, op=op: op(t, **options), x)


@given(scan_case(shape=SMALL, values=distinct), st.data())
def test_cummax_sort_topk_max_dim_first_derivatives_away_from_ties(case, data):
    x, options, axis = case
    assert_grads_match(lambda t: R.cummax(t, **options).values, x)
    assert_grads_match(lambda t: R.cummin(t, **options).values, x)
    dim = -1 if axis is None else axis
    k, largest = data.draw(st.integers(1, x.shape[dim])), data.draw(st.booleans())
    assert_grads_match(lambda t: R.sort(t, dim, descending=True).values, x)
    assert_grads_match(lambda t: R.topk(t, k, dim, largest=largest).values, x)
    assert_grads_match(lambda t: R.max_dim(t, dim).values * R.min_dim(t, dim).values, x)


# ------------------------------------------------------ second derivatives
@given(reduction_case(shape=SMALL))
def test_prod_var_second_derivatives(case):
    x, options, _, _ = case
    assert_second_grads_match(lambda t: R.prod(t, **options), x)
    assert_second_grads_match(lambda t: R.var(t, **options, ddof=0), x)


@given(reduction_case(shape=SMALL, values=signed_distinct_magnitudes), st.sampled_from([2, 1, np.inf, 3, 1.5]))
def test_std_norm_second_derivatives(case, p):
    x, options, axis, _ = case
    assert_second_grads_match(lambda t: R.norm(t, p, **options), x)
    if count(x.shape, axis) > 1:
        assert_second_grads_match(lambda t: R.std(t, **options), x)


@given(scan_case(shape=SMALL))
def test_scan_second_derivatives(case):
    x, options, _ = case
    for op in (R.cumsum, R.logcumsumexp):
        assert_second_grads_match(lambda t, op=op: op(t, **options) ** 2, x)
    # products of up to 9 values of 3 reach 3⁹: finite differences would only measure rounding
    assert_second_grads_match(lambda t: R.cumprod(t, **options) ** 2, x / max(1.0, float(np.abs(x).max())))


@given(scan_case(shape=SMALL, values=distinct))
def test_selection_second_derivatives(case):
    x, options, axis = case
    dim = -1 if axis is None else axis
    assert_second_grads_match(lambda t: R.cummax(t, **options).values ** 3, x)
    assert_second_grads_match(lambda t: R.sort(t, dim).values ** 3, x)
    assert_second_grads_match(lambda t: R.topk(t, 1, dim).values ** 3 + R.amax(t, dim) ** 2, x)


# -------------------------------------------------------- zeros and ties
def product_of_others(x):
    return np.array([np.prod(np.delete(x, j)) for j in range(x.size)])


@given(arrays(shape=st.integers(1, 6), elements=st.sampled_from([0.0, 0.0, -2.0, 0.5, 1.5, 3.0])))
def test_prod_gradient_is_the_product_of_the_others_with_zeros(x):
    _, g = first_grad(lambda t: R.prod(t), x, g=np.array(1.0))
    np.testing.assert_array_equal(g.data, product_of_others(x))
    assert_grads_match(R.prod, x)
    assert_second_grads_match(R.prod, x)


def test_prod_with_one_zero_and_with_two():
    _, g = first_grad(R.prod, np.array([2.0, 0.0, 3.0]), g=np.array(1.0))
    np.testing.assert_array_equal(g.data, [0.0, 6.0, 0.0])
    _, g = first_grad(R.prod, np.array([2.0, 0.0, 3.0, 0.0]), g=np.array(1.0))
    np.testing.assert_array_equal(g.data, [0.0, 0.0, 0.0, 0.0])


@given(arrays(shape=st.integers(1, 7), elements=st.sampled_from([0.0, 0.0, -2.0, 0.5, 1.5, 3.0])),
       arrays(shape=7, low=-1, high=1))
def test_cumprod_gradient_with_zeros_equals_the_products_loop(x, w):
    w = w[: x.size]
    _, g = first_grad(lambda t: R.cumprod(t, 0), x, g=w)
    expected = [sum(w[i] * np.prod(np.delete(x[: i + 1], j)) for i in range(j, x.size)) for j in range(x.size)]
    np.testing.assert_allclose(g.data, expected, rtol=1e-12, atol=1e-15)
    assert_second_grads_match(lambda t: R.cumprod(t, 0), x)


def test_ties_follow_pytorch():
    _, g = first_grad(lambda t: R.amax(t, dim=0), np.array([1.0, 3.0, 3.0]), g=np.array(1.0))
    np.testing.assert_array_equal(g.data, [0.0, 0.5, 0.5])  # amax: shared evenly
    values, indices = R.cummax(np.array([1.0, 3.0, 3.0, 2.0, 3.0]), 0)
    np.testing.assert_array_equal(indices.data, [0, 1, 2, 2, 4])  # torch.cummax: the last index
    _, g = first_grad(lambda t: R.cummax(t, 0).values, np.array([1.0, 3.0, 3.0, 2.0, 3.0]), g=np.ones(5))
    np.testing.assert_array_equal(g.data, [1.0, 1.0, 2.0, 0.0, 1.0])  # to the index it returns
    _, g = first_grad(lambda t: R.topk(t, 1).values, np.array([1.0, 3.0, 3.0, 2.0]), g=np.ones(1))
    np.testing.assert_array_equal(g.data, [0.0, 1.0, 0.0, 0.0])
    _, g = first_grad(lambda t: R.max_dim(t, 0).values, np.array([3.0, 1.0, 3.0]), g=np.array(1.0))
    np.testing.assert_array_equal(g.data, [1.0, 0.0, 0.0])  # torch.max(x, dim): the first index
    _, g = first_grad(lambda t: R.norm(t, np.inf), np.array([-2.0, 1.0, 2.0]), g=np.array(1.0))
    np.testing.assert_array_equal(g.data, [-0.5, 0.0, 0.5])  # ∞-norm: shared evenly, with the sign


def test_subgradients_at_zero_are_zero_as_in_pytorch():
    _, g = first_grad(lambda t: R.norm(t, dim=1), np.array([[0.0, 0.0], [3.0, 4.0]]), g=np.ones(2))
    np.testing.assert_allclose(g.data, [[0.0, 0.0], [0.6, 0.8]])
    _, g = first_grad(lambda t: R.std(t, dim=1), np.array([[2.0, 2.0], [1.0, 3.0]]), g=np.ones(2))
    np.testing.assert_allclose(g.data, [[0.0, 0.0], [-1 / math.sqrt(2), 1 / math.sqrt(2)]])
    for op in (R.norm, lambda t: R.norm(t, 3), R.std):  # and their second derivatives are finite there
        t = Tensor(np.zeros(3), requires_grad=True)
        (g1,) = grad(op(t), t, create_graph=True)
        (g2,) = grad(g1.sum(), t)
        np.testing.assert_array_equal(g1.data, 0)
        assert np.all(np.isfinite(g2.data))


# ---------------------------------------------------------- dtype, spelling
ALL_OPS = {
    "amax": lambda t: R.amax(t, dim=1), "amin": lambda t: R.amin(t, 0), "prod": lambda t: R.prod(t, 1),
    "var": lambda t: R.var(t, 1), "std": lambda t: R.std(t), "norm": lambda t: R.norm(t, 2, 1),
    "norm_inf": lambda t: R.norm(t, np.inf), "cumsum": lambda t: R.cumsum(t, 1), "cumprod": lambda t: R.cumprod(t, 0),
    "logcumsumexp": lambda t: R.logcumsumexp(t, 1), "cummax": lambda t: R.cummax(t, 1).values,
    "cummin": lambda t: R.cummin(t, 0).values, "sort": lambda t: R.sort(t).values,
    "topk": lambda t: R.topk(t, 2).values, "max_dim": lambda t: R.max_dim(t, 1).values,
}


@pytest.mark.parametrize("name", ALL_OPS)
def test_float32_stays_float32(name):
    x = np.array([[0.5, -1.25, 2.0], [1.5, 0.25, -0.75]], dtype=np.float32)
    out, g = first_grad(ALL_OPS[name], x)
    assert out.dtype == np.float32 and g.dtype == np.float32
    _, g64 = first_grad(ALL_OPS[name], x.astype(np.float64))
    np.testing.assert_allclose(g.data, g64.data, rtol=1e-5, atol=1e-6)


def test_both_spellings_and_list_axes_give_the_same_op():
    x = np.arange(24.0).reshape(2, 3, 4) / 10 - 1
    for op in (R.prod, R.var, R.std, R.norm, R.amax, R.amin):
        a = op(x, axis=(0, -1), keepdims=True).data
        np.testing.assert_array_equal(op(x, dim=[0, 2], keepdim=True).data, a)
        np.testing.assert_array_equal(op(x, dim=[-1, 0], keepdims=True).data, a)
    np.testing.assert_array_equal(R.cumsum(x, dim=-2).data, R.cumsum(x, axis=1).data)
    # keepdim wins over keepdims (Tensor methods pass keepdims=False on with the user's dim/keepdim)
    assert R.prod(x, axis=None, keepdims=False, dim=1, keepdim=True).shape == (2, 1, 4)
    assert R.max_dim(x, 1, keepdims=False, keepdim=True).values.shape == (2, 1, 4)
    np.testing.assert_array_equal(R.sort(x, axis=0).values.data, R.sort(x, 0).values.data)


def test_numpy_calls_on_tensors_are_these_ops():
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]])
    calls = [
        (lambda t: np.prod(t, axis=1), lambda t: R.prod(t, axis=1)),
        (lambda t: np.cumsum(t, axis=0), lambda t: R.cumsum(t, 0)),
        (np.cumprod, R.cumprod),
        (lambda t: np.var(t, axis=1, keepdims=True), lambda t: R.var(t, 1, True, ddof=0)),
        (lambda t: np.std(t, ddof=1), R.std),
        (lambda t: np.sort(t, axis=0), lambda t: R.sort(t, 0).values),
        (lambda t: np.sort(t, axis=None), lambda t: R.sort(tg.reshape(t, shape=(-1,))).values),
        (np.linalg.norm, R.norm),
    ]
    for numpy_call, op in calls:
        out, g = first_grad(numpy_call, x)
        expected, expected_g = first_grad(op, x)
        assert out.requires_grad
        np.testing.assert_array_equal(out.data, expected.data)
        np.testing.assert_array_equal(g.data, expected_g.data)
    np.testing.assert_array_equal(np.argsort(Tensor(x), axis=0).data, np.argsort(x, axis=0))


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, error, message", [
    (lambda x: R.prod(x, axis=2), ValueError, r"prod: axis 2 is out of range for an array of 2 dim"),
    (lambda x: R.var(x, dim=-3), ValueError, r"var: dim -3 is out of range"),
    (lambda x: R.amax(x, axis=5), ValueError, r"amax: axis 5 is out of range"),
    (lambda x: R.norm(x, 2, (0, -2)), ValueError, r"norm: axis \(0, -2\) repeats an axis"),
    (lambda x: R.cumsum(x, 2), ValueError, r"cumsum: axis 2 is out of range"),
    (lambda x: R.sort(x, 2), ValueError, r"sort: dim 2 is out of range"),
    (lambda x: R.cummax(x, dim=-3), ValueError, r"cummax: dim -3 is out of range"),
    (lambda x: R.topk(x, 4), ValueError, r"topk: k=4 is out of range for dim 1 of size 3"),
    (lambda x: R.topk(x, -1, 0), ValueError, r"topk: k=-1 is out of range for dim 0 of size 2"),
    (lambda x: R.topk(x, 1.5), TypeError, r"topk: k must be an int"),
    (lambda x: R.prod(x, axis=0, dim=0), TypeError, r"prod: give axis \(NumPy\) or dim \(PyTorch\), not both"),
    (lambda x: R.sort(x, 0, axis=1), TypeError, r"sort: give axis .* not both"),
    (lambda x: R.var(x, correction=1, ddof=0), TypeError, r"var: give one of correction .* got correction and ddof"),
    (lambda x: R.std(x, correction="1"), TypeError, r"std: correction must be a finite number"),
    (lambda x: R.cumprod(x, axis=(0, 1)), TypeError, r"cumprod: axis must be one int"),
    (lambda x: R.cumsum(x, axis=0.5), TypeError, r"cumsum: axis must be an int"),
    (lambda x: R.norm(x, "nuc"), ValueError, r"norm: p='nuc' is not supported"),
    (lambda x: R.norm(x, -1), ValueError, r"norm: p=-1.0 is not supported"),
    (lambda x: R.max_dim(x), TypeError, r"max_dim: needs a dim"),
    (lambda x: R.min_dim(np.zeros((2, 0)), 1), ValueError, r"min_dim: dim 1 has size 0"),
])
def test_bad_arguments_name_the_op_and_the_argument(call, error, message):
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(error, match=message):
        call(x)

"""Gather/scatter ops (tinygrad_lite.ops.gather): values against small loop references of
PyTorch's semantics (and np.take_along_axis), first and second derivatives against finite
differences over drawn shapes, dims and indices (with repeats), PyTorch's gradient rules for
ties and zeros, float32 kept, bad input refused before the op runs."""

import importlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_lite as tg
from tinygrad_lite.testing import assert_grads_match, assert_second_grads_match
from tinygrad_lite.testing.strategies import arrays, shapes

# the module, by its full name: once tinygrad_lite.ops exports the functions, ops.gather may name one of them
G = importlib.import_module("tinygrad_lite.ops.gather")


def check(fn, *xs):
    """fn's first and second derivatives at xs against finite differences."""
    assert_grads_match(fn, *xs)
    assert_second_grads_match(fn, *xs)


def values(t):
    return t.detach().numpy()


def target(i, dim, index):
    """The position of x that position i of the index names."""
    j = list(i)
    j[dim] = index[i]
    return tuple(j)


# ----------------------------------------------------------------- references
def gather_reference(x, dim, index):
    out = np.empty(index.shape, dtype=x.dtype)
    for i in np.ndindex(index.shape):
        out[i] = x[target(i, dim, index)]
    return out


def scatter_reference(x, dim, index, src, reduce=None, include_self=True):
    """The loop PyTorch documents: the members that land on each position, then reduced."""
    members = {j: [x[j]] if include_self or reduce is None else [] for j in np.ndindex(x.shape)}
    for i in np.ndindex(index.shape):
        value = src if np.ndim(src) == 0 else src[i]
        j = target(i, dim, index)
        members[j] = [value] if reduce is None else members[j] + [value]
    landed = {target(i, dim, index) for i in np.ndindex(index.shape)}
    functions = {None: lambda m: m[-1], "sum": sum, "prod": np.prod, "mean": np.mean, "amax": max, "amin": min}
    out = x.copy()
    for j in landed:
        out[j] = functions[reduce](members[j])
    return out


# ----------------------------------------------------------------- strategies
@st.composite
def dim_of(draw, ndim):
    d = draw(st.integers(0, ndim - 1))
    return d - ndim if draw(st.booleans()) else d


@st.composite
def index_cases(draw, with_src=False, distinct=False, max_side=3):
    """(x shape, dim, index, src shape): an index of x's dims, no larger than x outside dim
    (and no larger than src anywhere); values in range, with repeats unless ``distinct``."""
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=max_side))
    dim = draw(dim_of(len(shape)))
    d = dim % len(shape)
    n = shape[d]
    ishape = tuple(draw(st.integers(1, n if distinct else 4)) if k == d else draw(st.integers(1, m))
                   for k, m in enumerate(shape))
    if distinct:  # each line along dim gets distinct targets: a prefix of a random permutation
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        full = tuple(n if k == d else m for k, m in enumerate(ishape))
        index = np.argsort(rng.random(full), axis=d)
        index = index[tuple(slice(0, m) for m in ishape)]
    else:
        index = draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, n - 1)))
    src_shape = tuple(m + draw(st.integers(0, 1)) for m in ishape) if with_src else None
    return shape, dim, index, src_shape


# --------------------------------------------------------------------- gather
@given(case=index_cases(), data=st.data())
def test_gather(case, data):
    shape, dim, index, _ = case
    x = data.draw(arrays(shape=shape))
    np.testing.assert_array_equal(values(G.gather(x, dim, index)), gather_reference(x, dim % x.ndim, index))
    check(lambda t: G.gather(t, dim, index), x)


@given(x=arrays(shape=shapes(min_dims=1, max_dims=3, max_side=3)), data=st.data())
def test_take_along_axis(x, data):
    """NumPy's rules: indices broadcast against x outside the axis, negative ones count from the end."""
    axis = data.draw(dim_of(x.ndim))
    n = x.shape[axis]
    ishape = tuple(data.draw(st.integers(1, 3)) if k == axis % x.ndim else data.draw(st.sampled_from([1, m]))
                   for k, m in enumerate(x.shape))
    indices = data.draw(hnp.arrays(np.int64, ishape, elements=st.integers(-n, n - 1)))
    expected = np.take_along_axis(x, indices, axis)
    np.testing.assert_array_equal(values(G.take_along_axis(x, indices, axis)), expected)
    np.testing.assert_array_equal(values(np.take_along_axis(tg.Tensor(x), indices, axis)), expected)
    check(lambda t: G.take_along_axis(t, indices, axis), x)
    flat = indices.reshape(-1)
    np.testing.assert_array_equal(values(G.take_along_axis(x, flat, None)), np.take_along_axis(x, flat, None))
    np.testing.assert_array_equal(values(G.take_along_dim(x, indices)), np.take_along_axis(x.ravel(), flat, 0))


def test_take_along_axis_broadcasts_x_too():
    x = np.array([[1.0, 2.0, 3.0]])  # (1, 3) against indices (2, 2): x's size-1 dimension broadcasts
    indices = np.array([[0, 2], [1, 1]])
    np.testing.assert_array_equal(values(G.take_along_axis(x, indices, 1)), np.take_along_axis(x, indices, 1))
    check(lambda t: G.take_along_axis(t, indices, 1), x)


@given(x=arrays(shape=shapes(min_dims=1, max_dims=3, max_side=3)), data=st.data())
def test_index_select(x, data):
    dim = data.draw(dim_of(x.ndim))
    index = data.draw(hnp.arrays(np.int64, data.draw(st.integers(1, 4)), elements=st.integers(0, x.shape[dim] - 1)))
    np.testing.assert_array_equal(values(G.index_select(x, dim, index)), np.take(x, index, axis=dim))
    check(lambda t: G.index_select(t, dim, index), x)


# -------------------------------------------------------------------- scatter
@given(case=index_cases(with_src=True), data=st.data())
def test_scatter_add(case, data):
    shape, dim, index, src_shape = case
    x, src = data.draw(arrays(shape=shape)), data.draw(arrays(shape=src_shape))
    np.testing.assert_allclose(values(G.scatter_add(x, dim, index, src)),
                               scatter_reference(x, dim % x.ndim, index, src, "sum"), rtol=1e-12, atol=1e-12)
    check(lambda a, b: G.scatter_add(a, dim, index, b), x, src)


@given(case=index_cases(with_src=True, distinct=True), data=st.data())
def test_scatter(case, data):
    shape, dim, index, src_shape = case
    x, src = data.draw(arrays(shape=shape)), data.draw(arrays(shape=src_shape))
    np.testing.assert_array_equal(values(G.scatter(x, dim, index, src)), scatter_reference(x, dim % x.ndim, index, src))
    np.testing.assert_array_equal(values(G.scatter(x, dim, index, 2.5)), scatter_reference(x, dim % x.ndim, index, 2.5))
    check(lambda a, b: G.scatter(a, dim, index, b), x, src)


def test_scatter_gradients_follow_pytorch_with_repeated_indices():
    """∂x: zero wherever something was written; ∂src: g gathered, for every candidate."""
    x = tg.Tensor(np.zeros(3), requires_grad=True)
    src = tg.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    out = G.scatter(x, 0, np.array([2, 2, 0]), src)
    (out * tg.Tensor(np.array([10.0, 20.0, 30.0]))).sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 20, 0])
    np.testing.assert_array_equal(src.grad, [30, 30, 10])


@st.composite
def reduce_cases(draw):
    shape, dim, index, src_shape = draw(index_cases(with_src=True))
    reduce = draw(st.sampled_from(G.REDUCTIONS))
    if reduce == "prod":  # exact zeros included, and magnitudes that keep products modest
        elements = st.sampled_from([0.0, 0.5, -0.75, 1.25, -1.5, 0.9])
        x = draw(hnp.arrays(np.float64, shape, elements=elements))
        src = draw(hnp.arrays(np.float64, src_shape, elements=elements))
    else:
        x, src = draw(arrays(shape=shape)), draw(arrays(shape=src_shape))
    if reduce in ("amax", "amin"):  # no ties: finite differences see a kink there
        order = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).permutation(x.size + src.size) * 0.25 - 2
        x, src = order[:x.size].reshape(shape), order[x.size:].reshape(src_shape)
    return x, dim, index, src, reduce, draw(st.booleans())


@given(case=reduce_cases())
def test_scatter_reduce(case):
    x, dim, index, src, reduce, include_self = case
    out = G.scatter_reduce(x, dim, index, src, reduce, include_self=include_self)
    expected = scatter_reference(x, dim % x.ndim, index, src, reduce, include_self)
    np.testing.assert_allclose(values(out), expected, rtol=1e-12, atol=1e-12)
    check(lambda a, b: G.scatter_reduce(a, dim, index, b, reduce, include_self=include_self), x, src)


def test_scatter_amax_splits_the_gradient_among_ties_including_self():
    x = tg.Tensor(np.array([3.0, 0.0]), requires_grad=True)
    src = tg.Tensor(np.array([3.0, 1.0, 3.0, 5.0]), requires_grad=True)
    out = G.scatter_reduce(x, 0, np.array([0, 0, 0, 1]), src, "amax")
    np.testing.assert_array_equal(values(out), [3, 5])
    (out * tg.Tensor(np.array([6.0, 1.0]))).sum().backward()
    np.testing.assert_array_equal(x.grad, [2, 0])  # three members equal 3: 6 / 3 each
    np.testing.assert_array_equal(src.grad, [2, 0, 2, 1])
    x.grad = src.grad = None
    out = G.scatter_reduce(x, 0, np.array([0, 0, 0, 1]), src, "amin", include_self=False)
    np.testing.assert_array_equal(values(out), [1, 5])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 0])
    np.testing.assert_array_equal(src.grad, [0, 1, 0, 1])


def test_scatter_prod_gradient_with_zeros():
    """One zero: it gets the product of the others, the others 0; two zeros: all 0."""
    x = tg.Tensor(np.array([2.0, 0.0]), requires_grad=True)
    src = tg.Tensor(np.array([0.0, 3.0, 4.0, 0.0]), requires_grad=True)
    out = G.scatter_reduce(x, 0, np.array([0, 0, 1, 1]), src, "prod")
    np.testing.assert_array_equal(values(out), [0, 0])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 0])  # position 1 has two zeros (self and src[3])
    np.testing.assert_array_equal(src.grad, [6, 0, 0, 0])


def test_scatter_mean_divides_by_the_count_with_self():
    x = tg.Tensor(np.array([1.0, 7.0]), requires_grad=True)
    src = tg.Tensor(np.array([2.0, 3.0]), requires_grad=True)
    out = G.scatter_reduce(x, 0, np.array([0, 0]), src, "mean")
    np.testing.assert_array_equal(values(out), [2, 7])
    out.sum().backward()
    np.testing.assert_allclose(x.grad, [1 / 3, 1])
    np.testing.assert_allclose(src.grad, [1 / 3, 1 / 3])


def test_index_is_copied_when_the_op_runs():
    t = tg.Tensor(np.arange(4.0), requires_grad=True)
    index = np.array([3, 3, 0])
    out = G.gather(t, 0, index)
    index[:] = 1  # the caller reuses its array: backward must still scatter to 3, 3, 0
    out.sum().backward()
    np.testing.assert_array_equal(t.grad, [1, 0, 0, 2])


def test_index_may_be_a_tensor():
    t = tg.Tensor(np.arange(4.0), requires_grad=True)
    out = G.gather(t, 0, tg.Tensor(np.array([2, 0])))
    np.testing.assert_array_equal(values(out), [2, 0])


# ------------------------------------------------------------------- float32
F32_CASES = {
    "gather": lambda t: G.gather(t, 1, np.array([[0, 0], [2, 1]])),
    "take_along_axis": lambda t: G.take_along_axis(t, np.array([[-1], [0]]), 1),
    "index_select": lambda t: G.index_select(t, 1, [2, 2, 0]),
    "scatter_add": lambda t: G.scatter_add(t, 0, np.array([[1, 1, 0]]), t * 2),
    "scatter": lambda t: G.scatter(t, 0, np.array([[1, 0, 0]]), t * 2),
    **{f"scatter_{r}": (lambda t, r=r: G.scatter_reduce(t, 1, np.array([[0, 0], [2, 0]]), t + 1, r))
       for r in G.REDUCTIONS},
}


@pytest.mark.parametrize("name", F32_CASES)
def test_float32_is_kept(name):
    t = tg.Tensor(np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], dtype=np.float32), requires_grad=True)
    out = F32_CASES[name](t)
    assert out.dtype == np.float32
    (g,) = tg.autograd.grad((out * out).sum(), [t], create_graph=True)
    assert g.dtype == np.float32
    (gg,) = tg.autograd.grad((g * g).sum(), [t])
    assert gg.dtype == np.float32


# ----------------------------------------------------------------- bad input
X = np.zeros((2, 3))
I = np.array([[0, 1], [1, 0]])
BAD = [
    (lambda: G.gather(X, 2, I), IndexError, r"gather: dim=2 is out of range"),
    (lambda: G.gather(X, -3, I), ValueError, r"gather: dim=-3 is out of range"),
    (lambda: G.gather(X, 0, np.array([[2, 0]])), IndexError, r"gather: index 2 is out of range for dimension 0 "),
    (lambda: G.gather(X, 1, np.array([[0, -1]])), IndexError, r"gather: index -1 is out of range"),
    (lambda: G.gather(X, 1, np.array([0, 1])), ValueError, r"gather: index has 1 dimension\(s\) but the input has 2"),
    (lambda: G.gather(X, 1, np.zeros((3, 1), int)), ValueError, r"gather: index shape \(3, 1\) is larger"),
    (lambda: G.gather(X, 1, np.zeros((1, 1))), TypeError, r"gather: index must hold integers"),
    (lambda: G.scatter_add(X, 0, I, np.zeros((2, 1))), ValueError, r"scatter_add: index shape \(2, 2\) is larger "
                                                                    r"than the src shape"),
    (lambda: G.scatter_add(X, 1, I, 1.0), ValueError, r"scatter_add: src must have the index's 2"),
    (lambda: G.scatter(X, 1, I, np.zeros(4)), ValueError, r"scatter: index shape .* larger than the src"),
    (lambda: G.scatter(X, 1, I + 2, 1.0), IndexError, r"scatter: index 3 is out of range for dimension 1"),
    (lambda: G.scatter_reduce(X, 0, I, X, "max"), ValueError, r"scatter_reduce: reduce must be one of"),
    (lambda: G.scatter_reduce(X, 5, I, X, "sum"), IndexError, r"scatter_reduce: dim=5"),
    (lambda: G.index_select(X, 1, I), ValueError, r"index_select: index must be 1-D"),
    (lambda: G.index_select(X, 1, [3]), IndexError, r"index_select: index 3 is out of range for dimension 1"),
    (lambda: G.index_select(X, 2, [0]), IndexError, r"index_select: dim=2"),
    (lambda: G.take_along_axis(X, np.array([[3]]), 1), IndexError, r"take_along_axis: index 3 is out of range"),
    (lambda: G.take_along_axis(X, np.array([[-4]]), 1), IndexError, r"take_along_axis: index -4"),
    (lambda: G.take_along_axis(X, np.array([0]), 1), ValueError, r"take_along_axis: indices have 1 dimension"),
    (lambda: G.take_along_axis(X, np.zeros((3, 1), int), 1), ValueError, r"take_along_axis: indices shape \(3, 1\) "
                                                                          r"does not broadcast"),
    (lambda: G.take_along_axis(X, I, None), ValueError, r"take_along_axis: with axis=None indices must be 1-D"),
]


@pytest.mark.parametrize("call, error, message", BAD, ids=[m[:30] for _, _, m in BAD])
def test_bad_input_is_refused_before_the_op_runs(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert "argument shapes" not in str(info.value)  # raised by the checks, not by a failing op

"""Shape ops (tinygrad_lite.ops.shape): values against NumPy (or a small loop for PyTorch-only
semantics), first and second derivatives against finite differences over drawn shapes and
dims, float32 kept, bad input refused before the op runs, NumPy functions on Tensors."""

import importlib

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_lite as tg
from tinygrad_lite.testing import assert_grads_match, assert_second_grads_match
from tinygrad_lite.testing.strategies import arrays, shapes

# the module, by its full name: once tinygrad_lite.ops exports the functions, ops.shape may name one of them
S = importlib.import_module("tinygrad_lite.ops.shape")


def check(fn, *xs):
    """fn's first and second derivatives at xs against finite differences."""
    assert_grads_match(fn, *xs)
    assert_second_grads_match(fn, *xs)


def values(t):
    return t.detach().numpy()


@st.composite
def dim_of(draw, ndim):
    """A dimension of an ndim-array, as often negative as not."""
    d = draw(st.integers(0, ndim - 1))
    return d - ndim if draw(st.booleans()) else d


@st.composite
def some_dims(draw, ndim):
    """Distinct dims (some negative), at least one."""
    dims = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(d - ndim if draw(st.booleans()) else d for d in dims)


# ------------------------------------------------------------------------ pad
def pad_reference(x, pads, mode, value):
    """np.pad of the positive widths (PyTorch's order turned into NumPy's), then the negative ones cropped."""
    k = len(pads) // 2
    widths = [(0, 0)] * (x.ndim - k) + [(pads[2 * i], pads[2 * i + 1]) for i in reversed(range(k))]
    numpy_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    extra = {"constant_values": value} if mode == "constant" else {}
    out = np.pad(x, [(max(lo, 0), max(hi, 0)) for lo, hi in widths], mode=numpy_mode, **extra)
    return out[tuple(slice(max(-lo, 0), out.shape[d] - max(-hi, 0)) for d, (lo, hi) in enumerate(widths))]


@st.composite
def pad_cases(draw):
    x = draw(arrays(shape=shapes(min_dims=1, max_dims=3, max_side=3)))
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    k = draw(st.integers(1, x.ndim))
    pads = []
    for n in reversed(x.shape[x.ndim - k:]):
        low, high = {"constant": (-1, 2), "reflect": (0, n - 1), "replicate": (0, 3), "circular": (0, n)}[mode]
        lo, hi = draw(st.integers(low, high)), draw(st.integers(low, high))
        assume(n + lo + hi > 0)
        pads += [lo, hi]
    return x, tuple(pads), mode, draw(st.sampled_from([0.0, -1.5]))


@given(case=pad_cases())
def test_pad(case):
    x, pads, mode, value = case
    np.testing.assert_array_equal(values(S.pad(x, pads, mode, value)), pad_reference(x, pads, mode, value))
    check(lambda t: S.pad(t, pads, mode=mode, value=value), x)


def test_pad_reflect_and_crop_by_hand():
    x = np.arange(4.0)
    np.testing.assert_array_equal(values(S.pad(x, (2, 1), "reflect")), [2, 1, 0, 1, 2, 3, 2])
    np.testing.assert_array_equal(values(S.pad(x, (-1, 2), value=9)), [1, 2, 3, 9, 9])
    t = tg.Tensor(x, requires_grad=True)
    S.pad(t, (3, 3), "replicate").sum().backward()  # each edge copied 3 more times
    np.testing.assert_array_equal(t.grad, [4, 1, 1, 4])


# ---------------------------------------------------------- expand, repeat, tile
@st.composite
def expand_cases(draw):
    x = draw(arrays(shape=shapes(min_dims=0, max_dims=3, max_side=3)))
    sizes = [draw(st.integers(0, 3)) for _ in range(draw(st.integers(0, 2)))]
    for n in x.shape:
        sizes.append(draw(st.sampled_from([-1, n] + ([1, 2, 3] if n == 1 else []))))
    return x, tuple(sizes)


@given(case=expand_cases())
def test_expand(case):
    x, sizes = case
    lead = len(sizes) - x.ndim
    target = tuple(n if s == -1 else s for s, n in zip(sizes, (None,) * lead + x.shape))
    np.testing.assert_array_equal(values(S.expand(x, *sizes)), np.broadcast_to(x, target))
    np.testing.assert_array_equal(values(S.expand(x, sizes)), np.broadcast_to(x, target))
    check(lambda t: S.expand(t, *sizes), x)


@given(x=arrays(shape=shapes(min_dims=0, max_dims=3, max_side=3)), data=st.data())
def test_repeat_and_tile(x, data):
    reps = tuple(data.draw(st.lists(st.integers(1, 3), min_size=x.ndim, max_size=x.ndim + 2)))
    np.testing.assert_array_equal(values(S.repeat(x, *reps)), np.tile(x, reps))
    few = reps[len(reps) - data.draw(st.integers(0, len(reps))):]  # torch.tile pads dims with leading 1s
    np.testing.assert_array_equal(values(S.tile(x, few)), np.tile(x, few))
    check(lambda t: S.repeat(t, reps), x)
    check(lambda t: S.tile(t, few), x)


def test_repeat_zero_times_is_empty_with_zero_gradient():
    t = tg.Tensor(np.ones((2, 3)), requires_grad=True)
    out = S.repeat(t, 0, 2)
    assert out.shape == (0, 6)
    (S.repeat(t, 1, 2) * 2).sum().backward()
    np.testing.assert_array_equal(t.grad, np.full((2, 3), 4.0))


@given(x=arrays(shape=shapes(min_dims=1, max_dims=3, max_side=3)), data=st.data())
def test_repeat_interleave(x, data):
    dim = data.draw(st.none() | dim_of(x.ndim))
    n = x.size if dim is None else x.shape[dim]
    repeats = data.draw(st.integers(1, 2) | st.lists(st.integers(0, 3), min_size=n, max_size=n).map(
        lambda r: r[:-1] + [r[-1] + 1]))  # some output: gradcheck needs one
    expected = np.repeat(x, repeats, axis=dim)
    np.testing.assert_array_equal(values(S.repeat_interleave(x, repeats, dim)), expected)
    check(lambda t: S.repeat_interleave(t, repeats, dim), x)


# ------------------------------------------------------------------- the views
def squeeze_reference(x, dims):
    dims = {d % x.ndim for d in dims}
    return x.reshape([n for d, n in enumerate(x.shape) if not (d in dims and n == 1)])


@given(x=arrays(shape=shapes(min_dims=1, max_dims=4, max_side=3)), data=st.data())
def test_views(x, data):
    """squeeze, unsqueeze, flatten, permute, movedim, view against NumPy, with their gradients."""
    nd = x.ndim
    dims = data.draw(some_dims(nd))
    new = data.draw(st.integers(-nd - 1, nd))
    start, end = sorted([data.draw(st.integers(0, nd - 1)), data.draw(st.integers(0, nd - 1))])
    order = tuple(data.draw(st.permutations(range(nd))))
    src, dst = data.draw(some_dims(nd)), data.draw(some_dims(nd))
    assume(len(src) == len(dst))
    cases = [
        (lambda t: S.squeeze(t), np.squeeze(x)),
        (lambda t: S.squeeze(t, dims), squeeze_reference(x, dims)),
        (lambda t: S.unsqueeze(t, new), np.expand_dims(x, new)),
        (lambda t: S.flatten(t, start - nd, end), x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])),
        (lambda t: S.permute(t, *order), np.transpose(x, order)),
        (lambda t: S.movedim(t, src, dst), np.moveaxis(x, src, dst)),
        (lambda t: S.view(t, -1, x.shape[-1]), x.reshape(-1, x.shape[-1])),
        (lambda t: S.view(t, x.shape[::-1]), x.reshape(x.shape[::-1])),
    ]
    for fn, expected in cases:
        out = fn(tg.Tensor(x))
        assert out.shape == expected.shape
        np.testing.assert_array_equal(values(out), expected)
        check(fn, x)


def test_flatten_and_squeeze_of_a_0d_tensor():
    assert S.flatten(tg.Tensor(np.float64(2.0))).shape == (1,)
    assert S.squeeze(tg.Tensor(np.float64(2.0)), 0).shape == ()
    assert S.unsqueeze(tg.Tensor(np.float64(2.0)), -1).shape == (1,)


# ------------------------------------------------------------------ flip, roll
@given(x=arrays(shape=shapes(min_dims=1, max_dims=3, max_side=4)), data=st.data())
def test_flip(x, data):
    dims = data.draw(some_dims(x.ndim))
    np.testing.assert_array_equal(values(S.flip(x, dims)), np.flip(x, dims))
    np.testing.assert_array_equal(values(S.flip(x)), np.flip(x))
    check(lambda t: S.flip(t, dims), x)


@given(x=arrays(shape=shapes(min_dims=1, max_dims=3, max_side=4)), data=st.data())
def test_roll(x, data):
    dims = data.draw(st.none() | some_dims(x.ndim))
    shifts = data.draw(st.integers(-5, 5)) if dims is None else tuple(
        data.draw(st.integers(-5, 5)) for _ in dims)
    np.testing.assert_array_equal(values(S.roll(x, shifts, dims)), np.roll(x, shifts, dims))
    check(lambda t: S.roll(t, shifts, dims), x)


# --------------------------------------------------------- triangles, diagonals
@given(x=arrays(shape=shapes(min_dims=2, max_dims=3, max_side=4)), k=st.integers(-4, 4))
def test_tril_triu(x, k):
    np.testing.assert_array_equal(values(S.tril(x, k)), np.tril(x, k))
    np.testing.assert_array_equal(values(S.triu(x, k)), np.triu(x, k))
    check(lambda t: S.tril(t, k), x)
    check(lambda t: S.triu(t, diagonal=k), x)


@st.composite
def diagonal_cases(draw):
    x = draw(arrays(shape=shapes(min_dims=2, max_dims=3, max_side=4)))
    d1 = draw(dim_of(x.ndim))
    d2 = (d1 + draw(st.integers(1, x.ndim - 1))) % x.ndim  # another dimension
    return x, draw(st.integers(-3, 3)), d1, d2 - x.ndim if draw(st.booleans()) else d2


@given(case=diagonal_cases())
def test_diagonal(case):
    x, offset, d1, d2 = case
    np.testing.assert_array_equal(values(S.diagonal(x, offset, d1, d2)), np.diagonal(x, offset, d1, d2))
    check(lambda t: S.diagonal(t, offset, d1, d2), x)


def diagonal_scatter_reference(x, src, offset, d1, d2):
    """A loop: the k-th diagonal element of every (d1, d2) plane replaced by src[..., k]."""
    out = x.copy()
    moved = np.moveaxis(out, (d1, d2), (-2, -1))
    for k in range(src.shape[-1]):
        i, j = (k, k + offset) if offset >= 0 else (k - offset, k)
        moved[..., i, j] = src[..., k]
    return out


@given(case=diagonal_cases(), data=st.data())
def test_diagonal_scatter(case, data):
    x, offset, d1, d2 = case
    src = data.draw(arrays(shape=np.diagonal(x, offset, d1, d2).shape))
    expected = diagonal_scatter_reference(x, src, offset, d1, d2)
    np.testing.assert_array_equal(values(S.diagonal_scatter(x, src, offset, d1, d2)), expected)
    check(lambda a, b: S.diagonal_scatter(a, b, offset, d1, d2), x, src)


# --------------------------------------------------------------- split, chunk
def split_reference(x, size_or_sizes, dim):
    """PyTorch's split, written out: pieces of the given sizes, or of one size (last smaller)."""
    n = x.shape[dim]
    sizes = size_or_sizes if isinstance(size_or_sizes, list) else (
        [size_or_sizes] * (n // size_or_sizes) + ([n % size_or_sizes] if n % size_or_sizes else []))
    pieces, start = [], 0
    for s in sizes:
        pieces.append(np.take(x, range(start, start + s), axis=dim))
        start += s
    return pieces


@given(x=arrays(shape=shapes(min_dims=1, max_dims=3, max_side=5)), data=st.data())
def test_split_and_chunk(x, data):
    dim = data.draw(dim_of(x.ndim))
    n = x.shape[dim]
    arg = data.draw(st.integers(1, n + 1) | st.lists(st.integers(0, n), min_size=1, max_size=3).filter(
        lambda s: sum(s) <= n).map(lambda s: s + [n - sum(s)]))
    pieces = S.split(x, arg, dim)
    assert isinstance(pieces, tuple)
    expected = split_reference(x, arg, dim % x.ndim)
    assert len(pieces) == len(expected)
    for p, e in zip(pieces, expected):
        np.testing.assert_array_equal(values(p), e)
    chunks = data.draw(st.integers(1, n + 1))
    size = -(-n // chunks)
    got = S.chunk(x, chunks, dim)
    assert [p.shape[dim] for p in got] == [e.shape[dim % x.ndim] for e in split_reference(x, size, dim % x.ndim)]
    used = data.draw(st.integers(0, len(pieces) - 1))

    def weighted(t):  # one piece unused, the others with different weights
        parts = S.split(t, arg, dim)
        return tg.concatenate([(i + 1.0) * p.reshape(-1) for i, p in enumerate(parts) if i != used] +
                              [S.chunk(t, chunks, dim)[0].reshape(-1) * -2.0])

    check(weighted, x)


def test_unused_pieces_get_zero_gradient():
    t = tg.Tensor(np.arange(6.0), requires_grad=True)
    a, b, c = S.split(t, 2)
    (b * b).sum().backward()
    np.testing.assert_array_equal(t.grad, [0, 0, 4, 6, 0, 0])
    t.grad = None
    S.chunk(t, 4)[-1].sum().backward()  # ceil(6 / 4) = 2: three chunks
    np.testing.assert_array_equal(t.grad, [0, 0, 0, 0, 1, 1])


def test_narrow():
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(values(S.narrow(x, -1, -3, 2)), x[:, 1:3])
    check(lambda t: S.narrow(t, 0, 1, 2), x)


# ------------------------------------------------------------------- float32
F32_CASES = {
    "pad": lambda t: S.pad(t, (1, 2, 0, 1), value=1.5),
    "pad_reflect": lambda t: S.pad(t, (1, 1), "reflect"),
    "expand": lambda t: S.expand(t[None], 2, -1, -1),
    "repeat": lambda t: S.repeat(t, 2, 1),
    "tile": lambda t: S.tile(t, (1, 2)),
    "repeat_interleave": lambda t: S.repeat_interleave(t, [2, 1, 0], 0),
    "views": lambda t: S.view(S.permute(S.flatten(S.unsqueeze(t, 0)[:, :, None], 1, 2), 1, 0, 2), -1),
    "flip": lambda t: S.flip(t, -1),
    "roll": lambda t: S.roll(t, 1, 0),
    "tril": lambda t: S.tril(t, 1),
    "triu": lambda t: S.triu(t, -1),
    "diagonal": lambda t: S.diagonal(t, 1),
    "diagonal_scatter": lambda t: S.diagonal_scatter(t, S.diagonal(t) * 2),
    "split": lambda t: S.split(t, [1, 2], 0)[1],
}


@pytest.mark.parametrize("name", F32_CASES)
def test_float32_is_kept(name):
    t = tg.Tensor(np.arange(12, dtype=np.float32).reshape(3, 4) / 7, requires_grad=True)
    out = F32_CASES[name](t)
    assert out.dtype == np.float32
    loss = (out * out).sum()
    (g,) = tg.autograd.grad(loss, [t], create_graph=True)
    assert g.dtype == np.float32
    (gg,) = tg.autograd.grad((g * g).sum(), [t])
    assert gg.dtype == np.float32


# ----------------------------------------------------------------- bad input
X = np.zeros((2, 3))
BAD = [
    (lambda: S.pad(X, (1,)), ValueError, r"pad: pad=\(1,\) must have an even length"),
    (lambda: S.pad(X, (1, 1) * 3), ValueError, r"pad: pad=.* for a tensor of shape \(2, 3\)"),
    (lambda: S.pad(X, (1, 1), "wrap"), ValueError, r"pad: mode must be one of"),
    (lambda: S.pad(X, (3, 0), "reflect"), ValueError, r"pad: reflect padding \(3, 0\) must be smaller"),
    (lambda: S.pad(X, (-1, 0), "replicate"), ValueError, r"pad: negative padding"),
    (lambda: S.pad(X, (-2, -2)), ValueError, r"pad: padding \(-2, -2\) of dimension 1"),
    (lambda: S.pad(X, (1.5, 1)), TypeError, r"pad: pad must be an integer"),
    (lambda: S.expand(X, 3), ValueError, r"expand: sizes \(3,\) have fewer dimensions"),
    (lambda: S.expand(X, 2, 4), ValueError, r"expand: size 4 at dimension 1"),
    (lambda: S.expand(X, -1, 2, 3), ValueError, r"expand: .*new leading dimension"),
    (lambda: S.repeat(X, 2), ValueError, r"repeat: sizes \(2,\) have fewer dimensions"),
    (lambda: S.repeat(X, 2, -1), ValueError, r"repeat: sizes \(2, -1\) must be ≥ 0"),
    (lambda: S.tile(X, (-1,)), ValueError, r"tile: dims"),
    (lambda: S.repeat_interleave(X, [1, 2], 1), ValueError, r"repeat_interleave: 2 repeats"),
    (lambda: S.squeeze(X, 2), IndexError, r"squeeze: dim=2 is out of range"),
    (lambda: S.unsqueeze(X, 3), IndexError, r"unsqueeze: dim=3 is out of range"),
    (lambda: S.unsqueeze(X, -4), ValueError, r"unsqueeze: dim=-4 is out of range"),
    (lambda: S.flatten(X, 1, 0), ValueError, r"flatten: start_dim=1 comes after end_dim=0"),
    (lambda: S.flatten(X, 0, 2), IndexError, r"flatten: end_dim=2"),
    (lambda: S.permute(X, 0), ValueError, r"permute: dims \(0,\) must name each"),
    (lambda: S.permute(X, 0, -2), ValueError, r"permute: dims=\(0, -2\) repeats a dimension"),
    (lambda: S.movedim(X, (0, 1), 0), ValueError, r"movedim: source"),
    (lambda: S.view(X, 4, -1), ValueError, r"view: shape \(4, -1\) is invalid for a tensor of 6 elements"),
    (lambda: S.view(X, -1, -1), ValueError, r"view: shape \(-1, -1\) may have one -1"),
    (lambda: S.view(X, 5), ValueError, r"view: shape \(5,\) is invalid"),
    (lambda: S.flip(X, (0, 2)), IndexError, r"flip: dims=2 is out of range"),
    (lambda: S.flip(X, (1, -1)), ValueError, r"flip: dims=\(1, -1\) repeats"),
    (lambda: S.roll(X, (1, 2), 0), ValueError, r"roll: shifts \(1, 2\) and dims 0"),
    (lambda: S.roll(X, (1, 2)), ValueError, r"roll: with dims=None shifts must be one integer"),
    (lambda: S.roll(X, 1, 5), IndexError, r"roll: dims=5"),
    (lambda: S.tril(np.zeros(3)), ValueError, r"tril: needs a tensor of at least 2 dimensions"),
    (lambda: S.triu(X, 0.5), TypeError, r"triu: diagonal must be an integer"),
    (lambda: S.diagonal(X, 0, 1, -1), ValueError, r"diagonal: dim1=1 and dim2=-1 are the same"),
    (lambda: S.diagonal(X, 0, 0, 2), IndexError, r"diagonal: dim2=2"),
    (lambda: S.diagonal_scatter(X, np.zeros(3)), ValueError, r"diagonal_scatter: src has shape \(3,\)"),
    (lambda: S.split(X, [1, 1], 1), ValueError, r"split: split_size_or_sections \(1, 1\) must be sizes ≥ 0 "
                                                r"adding up to 3"),
    (lambda: S.split(X, 0), ValueError, r"split: split_size_or_sections=0 must be > 0"),
    (lambda: S.split(X, 1, -3), IndexError, r"split: dim=-3"),
    (lambda: S.chunk(X, 0), ValueError, r"chunk: chunks=0 must be > 0"),
    (lambda: S.narrow(X, 1, 2, 2), IndexError, r"narrow: start=2, length=2"),
    (lambda: np.split(tg.Tensor(X), 2, axis=1), ValueError, r"split: 2 sections do not divide"),
    (lambda: np.pad(tg.Tensor(X), 1, mode="median"), TypeError, r"numpy.pad with mode='median'"),
]


@pytest.mark.parametrize("call, error, message", BAD, ids=[m[:30] for _, _, m in BAD])
def test_bad_input_is_refused_before_the_op_runs(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert "argument shapes" not in str(info.value)  # raised by the checks, not by a failing op


def test_a_dim_out_of_range_is_both_index_and_value_error():
    with pytest.raises(IndexError):
        S.flip(X, 3)
    with pytest.raises(ValueError):
        S.flip(X, 3)


# ----------------------------------------------------- NumPy functions on Tensors
NUMPY_CASES = {
    "pad": (lambda a: np.pad(a, ((1, 0), (2, 1)), constant_values=0.5), (2, 3)),
    "pad_reflect_wide": (lambda a: np.pad(a, 5, mode="reflect"), (2, 3)),  # wider than the array: NumPy's rule
    "pad_reflect_size_1": (lambda a: np.pad(a, 2, mode="reflect"), (1, 3)),  # a size-1 axis repeats its element
    "pad_edge": (lambda a: np.pad(a, (1, 2), mode="edge"), (2, 3)),
    "pad_wrap": (lambda a: np.pad(a, 4, mode="wrap"), (3,)),
    "flip": (lambda a: np.flip(a, 1), (2, 3)),
    "flip_all": (lambda a: np.flip(a), (2, 3)),
    "roll": (lambda a: np.roll(a, (1, -1), axis=(0, 1)), (2, 3)),
    "roll_flat": (lambda a: np.roll(a, 4), (2, 3)),
    "tril": (lambda a: np.tril(a, -1), (3, 3)),
    "triu": (lambda a: np.triu(a, 1), (2, 3, 3)),
    "diagonal": (lambda a: np.diagonal(a, 1, 0, 2), (3, 2, 4)),
    "tile": (lambda a: np.tile(a, (2, 1, 2)), (2, 3)),
    "repeat": (lambda a: np.repeat(a, [2, 0, 1], axis=1), (2, 3)),
    "repeat_flat": (lambda a: np.repeat(a, 2), (2, 3)),
    "split": (lambda a: np.split(a, [1, 3], axis=1)[1], (2, 4)),
    "array_split": (lambda a: np.array_split(a, 3)[0], (5,)),
    "moveaxis": (lambda a: np.moveaxis(a, 0, -1), (2, 3, 4)),
}


@pytest.mark.parametrize("name", NUMPY_CASES)
def test_numpy_functions_on_tensors(name):
    fn, shape = NUMPY_CASES[name]
    x = np.random.default_rng(0).normal(size=shape)
    out = fn(tg.Tensor(x, requires_grad=True))
    assert isinstance(out, tg.Tensor) and out.requires_grad
    np.testing.assert_array_equal(values(out), fn(x))
    check(fn, x)


def test_numpy_split_returns_a_list_like_numpy():
    pieces = np.array_split(tg.Tensor(np.arange(7.0)), 3)
    assert isinstance(pieces, list) and [p.shape for p in pieces] == [(3,), (2,), (2,)]

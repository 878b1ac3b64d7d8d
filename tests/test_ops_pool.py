"""Pooling and resampling (tinygrad_lite.ops.pool): values against plain NumPy loops of PyTorch's
definitions (and a few values PyTorch computed), max-pool ties to the first maximum, first and second
derivatives against finite differences, the adjoint pairs, float32 kept, bad input refused."""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_lite as tg
from tinygrad_lite.ops import pool as P
from tinygrad_lite.testing import assert_grads_match, assert_second_grads_match
from tinygrad_lite.testing.strategies import arrays


# ----------------------------------------------------------------- references (loops)
def out_len(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output length."""
    n = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (n - 1) * s >= size + p:
        n -= 1
    return n


def window(i, k, s, p, d, size):
    """The input positions of window i along one axis (padding left out)."""
    return [i * s - p + m * d for m in range(k) if 0 <= i * s - p + m * d < size]


def max_pool_loop(x, k, s, p, d, ceil_mode):
    """Values, and the gradient of Σ g·out: each window's g to its first maximum (row-major order)."""
    n, c, h, w = x.shape
    ho, wo = (out_len(x.shape[2 + a], k[a], s[a], p[a], d[a], ceil_mode) for a in (0, 1))
    out, winners = np.full((n, c, ho, wo), -np.inf), {}
    for b, ch, i, j in np.ndindex(n, c, ho, wo):
        for r in window(i, k[0], s[0], p[0], d[0], h):
            for col in window(j, k[1], s[1], p[1], d[1], w):
                if x[b, ch, r, col] > out[b, ch, i, j]:
                    out[b, ch, i, j], winners[b, ch, i, j] = x[b, ch, r, col], (b, ch, r, col)
    return out, winners


def avg_pool_loop(x, k, s, p, ceil_mode, count_include_pad, divisor_override=None):
    n, c, h, w = x.shape
    ho, wo = (out_len(x.shape[2 + a], k[a], s[a], p[a], 1, ceil_mode) for a in (0, 1))
    out = np.zeros((n, c, ho, wo))
    for b, ch, i, j in np.ndindex(n, c, ho, wo):
        rows, cols = window(i, k[0], s[0], p[0], 1, h), window(j, k[1], s[1], p[1], 1, w)
        total = sum(x[b, ch, r, col] for r in rows for col in cols)
        if divisor_override:
            count = divisor_override
        elif count_include_pad:  # the window clipped to the padded input
            count = ((min(i * s[0] - p[0] + k[0], h + p[0]) - (i * s[0] - p[0]))
                     * (min(j * s[1] - p[1] + k[1], w + p[1]) - (j * s[1] - p[1])))
        else:
            count = len(rows) * len(cols)
        out[b, ch, i, j] = total / count
    return out


def adaptive_loop(x, ho, wo):
    n, c, h, w = x.shape
    out = np.zeros((n, c, ho, wo))
    for b, ch, i, j in np.ndindex(n, c, ho, wo):
        r0, r1 = math.floor(i * h / ho), math.ceil((i + 1) * h / ho)
        c0, c1 = math.floor(j * w / wo), math.ceil((j + 1) * w / wo)
        out[b, ch, i, j] = x[b, ch, r0:r1, c0:c1].mean()
    return out


def bilinear_loop(x, ho, wo, align_corners):
    """Each output pixel from the four input pixels around its source point (PyTorch's source index)."""
    n, c, h, w = x.shape

    def source(i, n_in, n_out):
        if n_in == n_out:
            return i, i, 0.0
        if align_corners:
            src = i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        low = min(int(src), n_in - 1)
        return low, min(low + 1, n_in - 1), src - low

    out = np.zeros((n, c, ho, wo))
    for i, j in np.ndindex(ho, wo):
        r0, r1, a = source(i, h, ho)
        c0, c1, b = source(j, w, wo)
        out[:, :, i, j] = ((1 - a) * ((1 - b) * x[:, :, r0, c0] + b * x[:, :, r0, c1])
                           + a * ((1 - b) * x[:, :, r1, c0] + b * x[:, :, r1, c1]))
    return out


def nearest_loop(x, ho, wo):
    n, c, h, w = x.shape
    out = np.zeros((n, c, ho, wo))
    for i, j in np.ndindex(ho, wo):
        r = i if ho == h else i // 2 if ho == 2 * h else min(int(np.floor(np.float32(i) * (np.float32(h) / ho))), h - 1)
        col = j if wo == w else j // 2 if wo == 2 * w else min(
            int(np.floor(np.float32(j) * (np.float32(w) / wo))), w - 1)
        out[:, :, i, j] = x[:, :, r, col]
    return out


# ----------------------------------------------------------------- strategies
@st.composite
def pool_options(draw, dilation=True):
    """(x shape, kernel, stride, padding, dilation, ceil_mode) with at least one output."""
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    h, w = (draw(st.integers(max(1, d[a] * (k[a] - 1) + 1 - 2 * p[a], d[a]), 6)) for a in (0, 1))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w), k, s, p, d, ceil_mode


def distinct(shape):
    """Values at least 0.1 apart (no ties for finite differences to cross)."""
    size = int(np.prod(shape))
    return st.permutations(range(size)).map(lambda order: (np.array(order, dtype=np.float64) * 0.1 - 1).reshape(
        shape))


def with_ties(shape):
    return arrays(shape=shape, elements=st.integers(-2, 2).map(float))


# ----------------------------------------------------------------- max pool
@given(pool_options(), st.data())
def test_max_pool2d_values_and_first_maximum_gradient(opts, data):
    shape, k, s, p, d, ceil_mode = opts
    x = data.draw(with_ties(shape))
    expected, winners = max_pool_loop(x, k, s, p, d, ceil_mode)
    xt = tg.Tensor(x, requires_grad=True)
    y = P.max_pool2d(xt, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(y.data, expected)
    g = np.arange(1.0, y.size + 1).reshape(y.shape)
    y.backward(g)
    grad = np.zeros_like(x)
    for index, position in winners.items():
        grad[position] += g[index]
    np.testing.assert_array_equal(xt.grad, grad)


def test_max_pool2d_ties_go_to_the_first_maximum_as_pytorch():
    x = tg.Tensor([[[[1.0, 3, 3, 0], [2, 3, 1, 3], [0, 0, 2, 2]]]], dtype=np.float64, requires_grad=True)
    y = P.max_pool2d(x, kernel_size=2, stride=1)
    np.testing.assert_array_equal(y.data[0, 0], [[3, 3, 3], [3, 3, 3]])
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(x.grad[0, 0], [[0, 2, 1, 0], [0, 2, 0, 1], [0, 0, 0, 0]])  # PyTorch's


@pytest.mark.parametrize("kernel", [2, (2, 3), (1, 1)])
def test_pools_whose_windows_tile_the_input(kernel):
    """stride = kernel, no padding: each input element in exactly one window (written once in backward)."""
    x = np.random.default_rng(5).integers(-2, 3, (2, 3, 4, 6)).astype(np.float64)
    expected, winners = max_pool_loop(x, P._pair(kernel, "k", 1), P._pair(kernel, "k", 1), (0, 0), (1, 1), False)
    xt = tg.Tensor(x, requires_grad=True)
    y = P.max_pool2d(xt, kernel_size=kernel)
    g = np.arange(1.0, y.size + 1).reshape(y.shape)
    y.backward(g)
    grad = np.zeros_like(x)
    for index, position in winners.items():
        grad[position] += g[index]
    np.testing.assert_array_equal(y.data, expected)
    np.testing.assert_array_equal(xt.grad, grad)
    assert_grads_match(lambda x: P.avg_pool2d(x, kernel_size=kernel), x)


def test_max_pool2d_propagates_nan():
    x = np.array([[[[1.0, np.nan], [3.0, 2.0]]]])
    assert np.isnan(P.max_pool2d(x, kernel_size=2).data).all()


@pytest.mark.parametrize("stride", [1, 2])
def test_an_infinite_cotangent_reaches_only_the_winners(stride):
    x = tg.Tensor(np.array([[[[1.0, 5.0, 2.0], [3.0, 4.0, 0.0], [6.0, 7.0, 8.0]]]]), requires_grad=True)
    y = P.max_pool2d(x, kernel_size=2, stride=stride, ceil_mode=True)
    y.backward(np.full(y.shape, np.inf))
    winners = {1: [[0, 1, 0], [0, 0, 0], [0, 1, 1]], 2: [[0, 1, 1], [0, 0, 0], [0, 1, 1]]}[stride]
    np.testing.assert_array_equal(x.grad[0, 0], np.where(winners, np.inf, 0))


@given(pool_options(), st.data())
def test_max_pool2d_derivatives_away_from_ties(opts, data):
    shape, k, s, p, d, ceil_mode = opts
    x = data.draw(distinct(shape))
    fn = lambda x: P.max_pool2d(x, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
    assume(np.isfinite(fn(x).data).all())  # no window entirely in the padding
    assert_grads_match(fn, x)
    assert_second_grads_match(fn, x)


def test_the_max_pool_gradient_is_the_adjoint_of_picking_the_winners():
    """⟨∂x, x⟩ = ⟨g, max_pool2d(x)⟩: backward scatters g to exactly the elements the forward picked."""
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal((2, 3, 7, 6)), requires_grad=True)
    y = P.max_pool2d(x, kernel_size=3, stride=2, padding=1, ceil_mode=True)  # overlapping windows
    g = rng.standard_normal(y.shape)
    y.backward(g)
    np.testing.assert_allclose(np.sum(x.grad * x.data), np.sum(g * y.data), rtol=1e-12)


# ----------------------------------------------------------------- avg pool
@given(pool_options(dilation=False), st.booleans(), st.sampled_from([None, 1, 3]), st.data())
def test_avg_pool2d_matches_the_loop(opts, count_include_pad, divisor_override, data):
    shape, k, s, p, _, ceil_mode = opts
    x = data.draw(arrays(shape=shape))
    y = P.avg_pool2d(x, kernel_size=k, stride=s, padding=p, ceil_mode=ceil_mode,
                     count_include_pad=count_include_pad, divisor_override=divisor_override)
    expected = avg_pool_loop(x, k, s, p, ceil_mode, count_include_pad, divisor_override)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-12)


@given(pool_options(dilation=False), st.booleans(), st.data())
def test_avg_pool2d_derivatives_and_adjoint(opts, count_include_pad, data):
    shape, k, s, p, _, ceil_mode = opts
    options = {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil_mode,
               "count_include_pad": count_include_pad}
    x = data.draw(arrays(shape=shape))
    fn = lambda x: P.avg_pool2d(x, **options)
    assert_grads_match(fn, x)
    assert_second_grads_match(fn, x)
    g = data.draw(arrays(shape=fn(x).shape))
    back = P.avg_pool2d_backward(g, input_size=shape[2:], **options)
    np.testing.assert_allclose(np.sum(back.data * x), np.sum(fn(x).data * g), rtol=1e-10, atol=1e-10)
    assert_grads_match(lambda g: P.avg_pool2d_backward(g, input_size=shape[2:], **options), g)


def test_stride_defaults_to_the_kernel():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(P.avg_pool2d(x, kernel_size=2).data[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(P.max_pool2d(x, kernel_size=2).data[0, 0], [[5, 7], [13, 15]])


# ----------------------------------------------------------------- adaptive pool and interpolate
@given(st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 7), st.integers(1, 7)), st.data())
def test_adaptive_avg_pool2d(shape, data):
    x = data.draw(arrays(shape=shape))
    out = (data.draw(st.integers(1, 8)), data.draw(st.one_of(st.none(), st.integers(1, 8))))
    wo = shape[3] if out[1] is None else out[1]
    y = P.adaptive_avg_pool2d(x, output_size=out)
    np.testing.assert_allclose(y.data, adaptive_loop(x, out[0], wo), rtol=1e-12, atol=1e-12)
    fn = lambda x: P.adaptive_avg_pool2d(x, output_size=out)
    assert_grads_match(fn, x)
    assert_second_grads_match(fn, x)


@given(st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 6), st.integers(1, 6)),
       st.tuples(st.integers(1, 9), st.integers(1, 9)), st.sampled_from(["nearest", False, True]), st.data())
def test_interpolate_to_a_size(shape, size, how, data):
    x = data.draw(arrays(shape=shape))
    if how == "nearest":
        fn = lambda x: P.interpolate(x, size=size)
        expected = nearest_loop(x, *size)
    else:
        fn = lambda x: P.interpolate(x, size=size, mode="bilinear", align_corners=how)
        expected = bilinear_loop(x, *size, align_corners=how)
    np.testing.assert_allclose(fn(x).data, expected, rtol=1e-12, atol=1e-12)
    assert_grads_match(fn, x)
    assert_second_grads_match(fn, x)


X12 = np.arange(12.0).reshape(1, 1, 3, 4)
PYTORCH = [  # F.interpolate(torch.arange(12.).reshape(1, 1, 3, 4), ...), computed by PyTorch 2.13
    ({"size": (5, 3)}, [[0, 1, 2], [0, 1, 2], [4, 5, 6], [4, 5, 6], [8, 9, 10]]),
    ({"scale_factor": 1.5}, [[0, 0, 1, 2, 2, 3], [0, 0, 1, 2, 2, 3], [4, 4, 5, 6, 6, 7], [8, 8, 9, 10, 10, 11]]),
    ({"size": (5, 3), "mode": "nearest-exact"}, [[0, 2, 3], [0, 2, 3], [4, 6, 7], [8, 10, 11], [8, 10, 11]]),
    ({"size": (5, 7), "mode": "bilinear", "align_corners": False},
     [[0.0, 0.3571428571428571, 0.9285714285714285, 1.5, 2.071428571428571, 2.642857142857143, 3.0],
      [1.6, 1.957142857142857, 2.5285714285714285, 3.1, 3.6714285714285713, 4.242857142857143, 4.6],
      [4.0, 4.357142857142858, 4.928571428571429, 5.5, 6.071428571428571, 6.642857142857143, 7.0],
      [6.4, 6.757142857142857, 7.328571428571427, 7.9, 8.47142857142857, 9.042857142857143, 9.4],
      [8.0, 8.357142857142856, 8.928571428571427, 9.5, 10.071428571428573, 10.642857142857144, 11.0]]),
    ({"size": (5, 7), "mode": "bilinear", "align_corners": True},
     [[0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0], [2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0], [4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0],
      [6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0], [8.0, 8.5, 9.0, 9.5, 10.0, 10.5, 11.0]]),
    ({"scale_factor": 0.6, "mode": "bilinear", "align_corners": False}, [[1.6666666666666667, 3.3333333333333335]]),
    ({"scale_factor": (1.3, 0.5), "mode": "bilinear"}, [[0.5, 2.5], [4.5, 6.5], [8.5, 10.5]]),  # a kept side: copied
    ({"size": (2, 3), "mode": "area"}, [[2.5, 3.5, 4.5], [6.5, 7.5, 8.5]]),
]


@pytest.mark.parametrize("kwargs, expected", PYTORCH, ids=[str(k) for k, _ in PYTORCH])
def test_interpolate_agrees_with_pytorch(kwargs, expected):
    np.testing.assert_allclose(P.interpolate(X12, **kwargs).data[0, 0], expected, rtol=1e-12, atol=1e-12)


def test_interpolate_second_derivatives_with_a_scale_factor():
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 4))
    for mode in ("nearest", "bilinear", "area", "nearest-exact"):
        fn = lambda x, mode=mode: P.interpolate(x, scale_factor=(1.7, 0.6), mode=mode)
        assert_grads_match(fn, x)
        assert_second_grads_match(fn, x)


# ----------------------------------------------------------------- dtype
@pytest.mark.parametrize("fn", [
    lambda x: P.max_pool2d(x, kernel_size=3, stride=2, padding=1),
    lambda x: P.avg_pool2d(x, kernel_size=2, ceil_mode=True, count_include_pad=False),
    lambda x: P.adaptive_avg_pool2d(x, output_size=(3, 2)),
    lambda x: P.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True),
    lambda x: P.interpolate(x, size=(3, 9)),
], ids=["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "bilinear", "nearest"])
def test_float32_stays_float32(fn):
    x = tg.Tensor(np.random.default_rng(2).standard_normal((2, 3, 5, 6)).astype(np.float32), requires_grad=True)
    y = fn(x)
    assert y.dtype == np.float32
    np.sum(y * y).backward()
    assert x.grad.dtype == np.float32


# ----------------------------------------------------------------- bad input
X = np.zeros((1, 2, 5, 5))
BAD = [
    (lambda: P.max_pool2d(X[0], kernel_size=2), r"max_pool2d: input x \(N, C, H, W\) must be 4-D, got shape \(2, 5"),
    (lambda: P.max_pool2d(X, kernel_size=0), r"max_pool2d: kernel_size must be a positive int or a pair"),
    (lambda: P.max_pool2d(X, kernel_size=2, stride=0), r"max_pool2d: stride must be a positive int"),
    (lambda: P.max_pool2d(X, kernel_size=2, padding=2), r"max_pool2d: padding \(2, 2\) must be at most half the "
                                                        r"kernel size \(2, 2\)"),
    (lambda: P.max_pool2d(X, kernel_size=(6, 2)), r"max_pool2d: input x of spatial size \(5, 5\).*smaller than the "
                                                  r"kernel \(6, 2\)"),
    (lambda: P.max_pool2d(X, kernel_size=3, dilation=3), r"max_pool2d: .*dilated by \(3, 3\)"),
    (lambda: P.avg_pool2d(X, kernel_size=3, padding=2), r"avg_pool2d: padding \(2, 2\) must be at most half"),
    (lambda: P.avg_pool2d(X, kernel_size=2, divisor_override=0), r"avg_pool2d: divisor_override must be a positive"),
    (lambda: P.avg_pool2d(X[0, 0], kernel_size=2), r"avg_pool2d: input x .* must be 4-D"),
    (lambda: P.avg_pool2d_backward(np.zeros((1, 2, 3, 3)), input_size=(5, 5), kernel_size=2),
     r"avg_pool2d_backward: grad_output has spatial size \(3, 3\), avg_pool2d of input size \(5, 5\) gives \(2, 2\)"),
    (lambda: P.adaptive_avg_pool2d(X, output_size=0), r"adaptive_avg_pool2d: output_size must be positive ints"),
    (lambda: P.adaptive_avg_pool2d(X, output_size=(1, 2, 3)), r"adaptive_avg_pool2d: output_size must be an int or"),
    (lambda: P.interpolate(X, size=3, scale_factor=2), r"interpolate: give exactly one of size and scale_factor"),
    (lambda: P.interpolate(X), r"interpolate: give exactly one of size and scale_factor"),
    (lambda: P.interpolate(X, size=3, mode="bicubic"), r"interpolate: mode must be one of"),
    (lambda: P.interpolate(X, size=3, align_corners=True), r"interpolate: align_corners can only be set with"),
    (lambda: P.interpolate(X, scale_factor=0.1), r"interpolate: scale_factor 0.1 makes an empty output"),
    (lambda: P.interpolate(X, scale_factor=-2), r"interpolate: scale_factor must be a positive number"),
    (lambda: P.interpolate(X[0], size=3), r"interpolate: input x .* must be 4-D, got shape \(2, 5, 5\)"),
]


@pytest.mark.parametrize("call, message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_input_is_refused_before_computing(call, message):
    with pytest.raises(ValueError, match=message):
        call()

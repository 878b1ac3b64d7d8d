"""tinygrad_lite.nn layers: forward values against plain NumPy loop references, gradients, state dicts
(buffers and frozen parameters included), train/eval switching and bad input."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite.nn as nn
from tinygrad_lite import Tensor, no_grad
from tinygrad_lite.testing import assert_grads_match, assert_second_grads_match

F64 = np.float64


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


# ---------------------------------------------------------------- references (loops, not im2col)
def conv2d_ref(x, w, b, stride, pads, dilation, groups):
    (t, bo), (l, r) = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)))
    n, _, h, wd = xp.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    ho, wo = (h - dh * (kh - 1) - 1) // sh + 1, (wd - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, ho, wo))
    for oc in range(o):
        g = oc // (o // groups)
        for i in range(ho):
            for j in range(wo):
                rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
                cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
                patch = xp[:, g * cg:(g + 1) * cg, rows, cols]
                out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3)) + (0 if b is None else b[oc])
    return out


def conv_transpose2d_ref(x, w, b, stride, padding, output_padding, dilation, groups):
    n, cin, h, wd = x.shape
    _, og, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    full = np.zeros((n, og * groups, (h - 1) * sh + dh * (kh - 1) + 1 + output_padding[0],
                     (wd - 1) * sw + dw * (kw - 1) + 1 + output_padding[1]))
    cg = cin // groups
    for g in range(groups):
        xs, ws = x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg]
        for i in range(h):
            for j in range(wd):
                for p in range(kh):
                    for q in range(kw):
                        contribution = xs[:, :, i, j] @ ws[:, :, p, q]
                        full[:, g * og:(g + 1) * og, i * sh + dh * p, j * sw + dw * q] += contribution
    out = full[:, :, ph:full.shape[2] - ph, pw:full.shape[3] - pw]
    return out + (0 if b is None else b[None, :, None, None])


def pool_ref(x, k, s, p, d, reduce, fill):
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=fill)
    ho = (xp.shape[2] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    wo = (xp.shape[3] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = np.empty(x.shape[:2] + (ho, wo))
    for i in range(ho):
        for j in range(wo):
            rows = slice(i * s[0], i * s[0] + d[0] * (k[0] - 1) + 1, d[0])
            win = xp[:, :, rows, j * s[1]:j * s[1] + d[1] * (k[1] - 1) + 1:d[1]]
            out[:, :, i, j] = reduce(win, axis=(2, 3))
    return out


# ---------------------------------------------------------------------------------- convolution
@given(n=st.integers(1, 2), groups=st.sampled_from([1, 2]), cpg=st.integers(1, 2), opg=st.integers(1, 2),
       k=st.tuples(st.integers(1, 3), st.integers(1, 3)), stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       padding=st.one_of(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.just("same"), st.just("valid")),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)), bias=st.booleans(), seed=st.integers(0, 99))
def test_conv2d_forward_matches_a_loop_reference(n, groups, cpg, opg, k, stride, padding, dilation, bias, seed):
    if padding == "same":
        stride = (1, 1)
    conv = nn.Conv2d(cpg * groups, opg * groups, k, stride, padding, dilation, groups, bias, rng=seed, dtype=F64)
    x = rand(n, cpg * groups, 6, 5, seed=seed)
    if padding == "same":
        pads = tuple((d * (kk - 1) // 2, d * (kk - 1) - d * (kk - 1) // 2) for d, kk in zip(dilation, k))
    else:
        pads = ((0, 0), (0, 0)) if padding == "valid" else tuple((p, p) for p in padding)
    expected = conv2d_ref(x, conv.weight.data, None if conv.bias is None else conv.bias.data, stride, pads,
                          dilation, groups)
    np.testing.assert_allclose(conv(x).data, expected, rtol=1e-12, atol=1e-12)
    if padding == "same":
        assert conv(x).shape[2:] == x.shape[2:]


@pytest.mark.parametrize("mode, np_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
def test_conv2d_padding_modes_pad_like_numpy(mode, np_mode):
    conv = nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode=mode, rng=0, dtype=F64)
    x = rand(2, 2, 5, 6)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2)), mode=np_mode)
    expected = conv2d_ref(xp, conv.weight.data, conv.bias.data, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    np.testing.assert_allclose(conv(x).data, expected, rtol=1e-12)


def test_conv1d_is_a_2d_convolution_of_height_one():
    conv = nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, rng=1, dtype=F64)
    x = rand(3, 4, 11)
    expected = conv2d_ref(x[:, :, None], conv.weight.data[:, :, None], conv.bias.data, (1, 2), ((0, 0), (2, 2)),
                          (1, 2), 2)[:, :, 0]
    np.testing.assert_allclose(conv(x).data, expected, rtol=1e-12)
    assert nn.Conv1d(2, 2, 4, padding="same", dtype=F64)(rand(1, 2, 7)).shape == (1, 2, 7)


@given(groups=st.sampled_from([1, 2]), k=st.integers(1, 3), stride=st.integers(1, 3), padding=st.integers(0, 1),
       dilation=st.integers(1, 2), extra=st.integers(0, 2), seed=st.integers(0, 99))
def test_conv_transpose2d_forward_matches_a_scatter_reference(groups, k, stride, padding, dilation, extra, seed):
    output_padding = min(extra, stride - 1)
    layer = nn.ConvTranspose2d(2 * groups, 3 * groups, k, stride, padding, output_padding, groups, True, dilation,
                               rng=seed, dtype=F64)
    x = rand(2, 2 * groups, 3, 4, seed=seed)
    expected = conv_transpose2d_ref(x, layer.weight.data, layer.bias.data, (stride,) * 2, (padding,) * 2,
                                    (output_padding,) * 2, (dilation,) * 2, groups)
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-12, atol=1e-12)
    assert layer.weight.shape == (2 * groups, 3, k, k)


def test_conv_layers_use_pytorch_default_init_bounds():
    conv = nn.Conv2d(4, 6, (3, 2), groups=2, rng=0)
    bound = 1 / math.sqrt(2 * 3 * 2)
    assert conv.weight.shape == (6, 2, 3, 2) and conv.weight.dtype == np.float32
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.5 * bound
    before = conv.weight.data.copy()
    conv.reset_parameters(rng=1)
    assert not np.array_equal(before, conv.weight.data) and np.abs(conv.weight.data).max() <= bound
    t = nn.ConvTranspose2d(4, 6, 3, groups=2, rng=0)
    assert t.weight.shape == (4, 3, 3, 3) and np.abs(t.weight.data).max() <= 1 / math.sqrt(27)


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2, dtype=F64), (2, 2, 5, 4)),
    (lambda: nn.Conv1d(2, 3, 2, dilation=2, padding=1, dtype=F64), (2, 2, 5)),
    (lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1, dtype=F64), (1, 2, 3, 3)),
])
def test_conv_layer_gradients_match_finite_differences(make, shape):
    layer = make()

    def f(x, w, b):
        layer.weight, layer.bias = w, b
        y = layer(x)
        return (y + 1) ** 2

    assert_grads_match(f, rand(*shape, seed=1), layer.weight.data.copy(), layer.bias.data.copy(), fast=True)


# ---------------------------------------------------------------------------------------- pooling
@given(k=st.tuples(st.integers(1, 3), st.integers(1, 3)), s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       pad=st.tuples(st.integers(0, 1), st.integers(0, 1)), d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       seed=st.integers(0, 99))
def test_max_pool2d_matches_a_loop_reference(k, s, pad, d, seed):
    pad = tuple(min(p, kk // 2) for p, kk in zip(pad, k))
    x = rand(2, 3, 6, 7, seed=seed)
    layer = nn.MaxPool2d(k, s, pad, d)
    np.testing.assert_array_equal(layer(x).data, pool_ref(x, k, s, pad, d, np.max, -np.inf))


@given(k=st.tuples(st.integers(1, 3), st.integers(1, 3)), s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       pad=st.tuples(st.integers(0, 1), st.integers(0, 1)), include=st.booleans(), seed=st.integers(0, 99))
def test_avg_pool2d_matches_a_loop_reference(k, s, pad, include, seed):
    pad = tuple(min(p, kk // 2) for p, kk in zip(pad, k))
    x = rand(2, 2, 6, 5, seed=seed)
    layer = nn.AvgPool2d(k, s, pad, count_include_pad=include)
    if include:
        expected = pool_ref(x, k, s, pad, (1, 1), np.mean, 0.0)
    else:  # mean over the real elements: sum / count of ones
        expected = pool_ref(x, k, s, pad, (1, 1), np.sum, 0.0) / pool_ref(np.ones_like(x), k, s, pad, (1, 1),
                                                                            np.sum, 0.0)
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-12)


@pytest.mark.parametrize("size, out", [((6, 5), (3, 2)), ((5, 7), (2, 3)), ((4, 4), 1), ((3, 5), (None, 2))])
def test_adaptive_avg_pool2d_averages_pytorchs_windows(size, out):
    x = rand(2, 3, *size)
    ho, wo = (out, out) if isinstance(out, int) else (size[0] if out[0] is None else out[0], out[1])
    expected = np.empty((2, 3, ho, wo))
    for i in range(ho):
        for j in range(wo):
            r0, r1 = (i * size[0]) // ho, -(-(i + 1) * size[0] // ho)
            c0, c1 = (j * size[1]) // wo, -(-(j + 1) * size[1] // wo)
            expected[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(out)(x).data, expected, rtol=1e-12)


def test_pool_gradients_match_finite_differences():
    x = rand(1, 2, 5, 5, seed=3)
    assert_grads_match(lambda t: nn.MaxPool2d(2, 1, 1)(t) ** 2, x)
    assert_grads_match(lambda t: nn.AvgPool2d(3, 2, 1, count_include_pad=False)(t) ** 2, x)
    assert_grads_match(lambda t: nn.AdaptiveAvgPool2d((2, 3))(t) ** 2, x)


# ---------------------------------------------------------------------------------- normalisation
def bn_ref(x, axes, eps):
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


@pytest.mark.parametrize("cls, shape", [(nn.BatchNorm2d, (4, 3, 2, 3)), (nn.BatchNorm1d, (5, 3)),
                                        (nn.BatchNorm1d, (2, 3, 4))])
def test_batchnorm_training_uses_batch_stats_and_updates_running_stats_with_the_unbiased_variance(cls, shape):
    bn = cls(3, eps=1e-3, momentum=0.2, dtype=F64)
    with no_grad():
        bn.weight.copy_(np.array([1.0, 2.0, -0.5]))
        bn.bias.copy_(np.array([0.0, 1.0, 3.0]))
    axes = (0,) + tuple(range(2, len(shape)))
    cshape = (1, 3) + (1,) * (len(shape) - 2)
    n = np.prod(shape) // 3
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = rand(*shape, seed=step) * (step + 1) + step
        y = bn(x)
        expected = bn_ref(x, axes, 1e-3) * bn.weight.data.reshape(cshape) + bn.bias.data.reshape(cshape)
        np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-12)
        rm = 0.8 * rm + 0.2 * x.mean(axis=axes)
        rv = 0.8 * rv + 0.2 * x.var(axis=axes) * n / (n - 1)
        np.testing.assert_allclose(bn.running_mean, rm, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var, rv, rtol=1e-12)
        assert int(bn.num_batches_tracked) == step + 1
    bn.eval()
    x = rand(*shape, seed=9)
    expected = (x - rm.reshape(cshape)) / np.sqrt(rv.reshape(cshape) + 1e-3) * bn.weight.data.reshape(cshape) \
        + bn.bias.data.reshape(cshape)
    np.testing.assert_allclose(bn(x).data, expected, rtol=1e-12, atol=1e-12)
    before = bn.state_dict()
    bn(x)  # eval: the running statistics do not move
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_batchnorm_momentum_none_is_a_cumulative_average_and_no_tracking_always_uses_the_batch():
    bn = nn.BatchNorm1d(2, momentum=None, dtype=F64)
    xs = [rand(4, 2, seed=s) + s for s in range(3)]
    for x in xs:
        bn(x)
    np.testing.assert_allclose(bn.running_mean, np.mean([x.mean(0) for x in xs], axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, np.mean([x.var(0, ddof=1) for x in xs], axis=0), rtol=1e-12)
    free = nn.BatchNorm2d(2, affine=False, track_running_stats=False, dtype=F64).eval()
    x = rand(3, 2, 2, 2)
    np.testing.assert_allclose(free(x).data, bn_ref(x, (0, 2, 3), 1e-5), rtol=1e-12)
    assert free.running_mean is None and list(free.state_dict()) == [] and free.named_buffers() == []


def test_batchnorm_refuses_eval_before_statistics_and_bad_input_before_any_state_changes():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3.*eval\(\) mode before any running statistics"):
        bn.eval()(np.zeros((2, 3, 2, 2), np.float32))
    bn.train()
    before = bn.state_dict()
    for x, message in [(np.zeros((2, 3, 4), np.float32), r"must be 4-D \(N, C, H, W\), got shape \(2, 3, 4\)"),
                       (np.zeros((2, 4, 2, 2), np.float32), r"has 4 channels \(shape \(2, 4, 2, 2\)\), expected 3"),
                       (np.zeros((1, 3, 1, 1), np.float32), "more than 1 value per channel"),
                       (np.zeros((2, 3, 2, 2), np.float64), "dtype float64")]:
        with pytest.raises((ValueError, TypeError), match=message):
            bn(x)
        for k, v in bn.state_dict().items():
            np.testing.assert_array_equal(v, before[k], err_msg=k)
    bn.load_state_dict({**before, "num_batches_tracked": np.array(5)})  # statistics from a checkpoint
    bn.eval()(np.zeros((2, 3, 2, 2), np.float32))


@given(n=st.integers(2, 4), groups=st.integers(1, 3), per_group=st.integers(1, 3),
       spatial=st.lists(st.integers(1, 3), min_size=0, max_size=2), seed=st.integers(0, 999))
def test_group_norm_and_batch_norm_match_numpy_over_drawn_shapes(n, groups, per_group, spatial, seed):
    c = groups * per_group
    x = rand(n, c, *spatial, seed=seed) * 3 + 1
    gn = nn.GroupNorm(groups, c, dtype=F64)
    expected = bn_ref(x.reshape(n, groups, -1), (2,), 1e-5).reshape(x.shape)
    np.testing.assert_allclose(gn(x).data, expected, rtol=1e-10, atol=1e-12)
    bn = nn.BatchNorm1d(c, dtype=F64) if len(spatial) < 2 else nn.BatchNorm2d(c, dtype=F64)
    axes = (0,) + tuple(range(2, x.ndim))
    np.testing.assert_allclose(bn(x).data, bn_ref(x, axes, 1e-5), rtol=1e-10, atol=1e-12)
    count = x.size // c
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=axes) * count / (count - 1), rtol=1e-12)


@pytest.mark.parametrize("shape, axis", [((3, 4), (0,)), ((2, 3, 4), (0, 2)), ((2, 3, 4), (-1,)), ((3, 2, 2), (1, 2))])
def test_normalize_first_and_second_derivatives(shape, axis):
    x = rand(*shape, seed=2) * 2 + 1
    assert_grads_match(lambda t: nn.normalize(t, axis=axis, eps=1e-3), x)
    assert_second_grads_match(lambda t: nn.normalize(t, axis=axis, eps=1e-3), x)


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.BatchNorm2d(2, dtype=F64), (3, 2, 2, 2)),
    (lambda: nn.BatchNorm1d(3, dtype=F64), (4, 3)),
    (lambda: nn.LayerNorm((2, 3), dtype=F64), (2, 2, 3)),
    (lambda: nn.GroupNorm(2, 4, dtype=F64), (2, 4, 3)),
])
def test_norm_layer_gradients_and_second_derivatives(make, shape):
    layer = make()
    w = rand(*layer.weight.shape, seed=5) + 1
    b = rand(*layer.bias.shape, seed=6)

    def f(x, w, b):
        layer.weight, layer.bias = w, b
        return layer(x) ** 2

    x = rand(*shape, seed=4) * 3
    assert_grads_match(f, x, w, b)
    assert_second_grads_match(f, x, w, b)


def test_batchnorm_eval_gradients():
    bn = nn.BatchNorm2d(2, dtype=F64)
    bn(rand(3, 2, 2, 2))
    bn.eval()

    def f(x, w, b):
        bn.weight, bn.bias = w, b
        return bn(x) ** 2

    assert_grads_match(f, rand(2, 2, 2, 2, seed=1), np.array([1.5, -0.5]), np.array([0.1, 0.2]))


def test_layer_norm_and_group_norm_match_numpy():
    x = rand(2, 4, 3, 2, seed=1) * 2 + 1
    ln = nn.LayerNorm([3, 2], eps=1e-4, dtype=F64)
    with no_grad():
        ln.weight.copy_(rand(3, 2, seed=2))
        ln.bias.copy_(rand(3, 2, seed=3))
    expected = bn_ref(x, (2, 3), 1e-4) * ln.weight.data + ln.bias.data
    np.testing.assert_allclose(ln(x).data, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nn.LayerNorm(2, elementwise_affine=False, dtype=F64)(x).data, bn_ref(x, (3,), 1e-5),
                               rtol=1e-12, atol=1e-12)
    gn = nn.GroupNorm(2, 4, dtype=F64)
    with no_grad():
        gn.weight.copy_(np.arange(1.0, 5.0))
        gn.bias.copy_(-np.arange(4.0))
    grouped = bn_ref(x.reshape(2, 2, -1), (2,), 1e-5).reshape(x.shape)
    expected = grouped * np.arange(1.0, 5.0)[None, :, None, None] - np.arange(4.0)[None, :, None, None]
    np.testing.assert_allclose(gn(x).data, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"LayerNorm\(\(3, 2\).*does not end in normalized_shape"):
        ln(rand(2, 2, 3))
    with pytest.raises(ValueError, match="num_channels=5 must be divisible by num_groups=2"):
        nn.GroupNorm(2, 5)
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 4.*has 3 channels"):
        gn(rand(2, 3, 2))


# ------------------------------------------------------------------------ embedding, flatten, identity
def test_embedding_looks_up_rows_and_the_padding_row_gets_no_gradient():
    emb = nn.Embedding(5, 3, padding_idx=1, rng=0, dtype=F64)
    np.testing.assert_array_equal(emb.weight.data[1], 0)
    idx = np.array([[0, 1, 4], [1, 4, 4]])
    out = emb(idx)
    np.testing.assert_array_equal(out.data, emb.weight.data[idx])
    g = rand(2, 3, 3)
    out.backward(g)
    expected = np.zeros((5, 3))
    np.add.at(expected, idx, g)
    expected[1] = 0
    np.testing.assert_allclose(emb.weight.grad, expected, rtol=1e-12)
    assert_grads_match(lambda w: nn.embedding(idx, w, padding_idx=1) ** 2, emb.weight.data.copy())
    assert_second_grads_match(lambda w: nn.embedding(idx, w) ** 3, emb.weight.data.copy())
    with pytest.raises(ValueError, match=r"Embedding\(5, 3, padding_idx=1\): embedding: index 5 at position \(1, 0\)"):
        emb(np.array([[0, 1], [5, 2]]))
    with pytest.raises(ValueError, match="indices must be integers"):
        emb(np.array([0.0, 1.0]))
    assert nn.Embedding(4, 2, padding_idx=-1).padding_idx == 3


def test_flatten_and_identity():
    x = rand(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)
    assert nn.Flatten(-2)(x).shape == (2, 3, 20)
    t = Tensor(x)
    assert nn.Identity(7, foo=1)(t) is t
    with pytest.raises(ValueError, match="Flatten"):
        nn.Flatten(2, 1)(x)


# -------------------------------------------------------------------------------------- activations
def _softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta)


_ERF = np.vectorize(math.erf)
SELU_A, SELU_S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
ACTIVATIONS = [
    (nn.GELU(), lambda x: 0.5 * x * (1 + _ERF(x / math.sqrt(2)))),
    (nn.GELU("tanh"), lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))),
    (nn.SiLU(), lambda x: x / (1 + np.exp(-x))),
    (nn.Softplus(2.0, 3.0), lambda x: _softplus(x, 2.0, 3.0)),
    (nn.ELU(0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    (nn.CELU(2.0), lambda x: np.maximum(x, 0) + np.minimum(0, 2.0 * np.expm1(x / 2.0))),
    (nn.SELU(), lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(x))),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.ReLU6(), lambda x: np.clip(x, 0, 6)),
    (nn.Hardtanh(-2.0, 1.5), lambda x: np.clip(x, -2.0, 1.5)),
    (nn.Hardswish(), lambda x: x * np.clip(x + 3, 0, 6) / 6),
    (nn.Hardsigmoid(), lambda x: np.clip(x + 3, 0, 6) / 6),
    (nn.Mish(), lambda x: x * np.tanh(_softplus(x))),
    (nn.LogSigmoid(), lambda x: -np.log1p(np.exp(-x))),
    (nn.Softsign(), lambda x: x / (1 + np.abs(x))),
    (nn.Softmax(dim=0), lambda x: np.exp(x) / np.exp(x).sum(0)),
    (nn.LogSoftmax(dim=-1), lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
    (nn.Softmax(), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),  # dim=None on 2-D: dim 1, as PyTorch
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.Tanh(), np.tanh),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
]


@pytest.mark.parametrize("module, reference", ACTIVATIONS, ids=lambda v: repr(v) if isinstance(v, nn.Module) else "")
def test_activation_modules_match_their_formulas(module, reference):
    x = rand(4, 6, seed=1) * 3
    np.testing.assert_allclose(module(x).data, reference(x), rtol=1e-10, atol=1e-12)
    assert_grads_match(lambda t: module(t) ** 2, x + 0.01)  # away from the kinks at 0


# ------------------------------------------------------------------------------ state dicts, modes
LAYERS = {
    "Conv1d": lambda rng: nn.Conv1d(2, 4, 3, groups=2, rng=rng),
    "Conv2d": lambda rng: nn.Conv2d(2, 3, (2, 3), padding=1, rng=rng),
    "ConvTranspose2d": lambda rng: nn.ConvTranspose2d(2, 3, 2, stride=2, rng=rng),
    "BatchNorm1d": lambda rng: nn.BatchNorm1d(3),
    "BatchNorm2d": lambda rng: nn.BatchNorm2d(3),
    "LayerNorm": lambda rng: nn.LayerNorm([2, 3]),
    "GroupNorm": lambda rng: nn.GroupNorm(1, 3),
    "Embedding": lambda rng: nn.Embedding(6, 2, padding_idx=0, rng=rng),
    "Linear": lambda rng: nn.Linear(3, 2, rng=rng),
}
KEYS = {
    "Conv1d": ["weight", "bias"], "Conv2d": ["weight", "bias"], "ConvTranspose2d": ["weight", "bias"],
    "BatchNorm1d": ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"],
    "BatchNorm2d": ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"],
    "LayerNorm": ["weight", "bias"], "GroupNorm": ["weight", "bias"], "Embedding": ["weight"],
    "Linear": ["weight", "bias"],
}


def _scramble(model, seed):
    """Move every parameter and buffer away from its initial value."""
    rng = np.random.default_rng(seed)
    with no_grad():
        for p in model.parameters(include_frozen=True):
            p.copy_(rng.normal(size=p.shape))
    for _, b in model.named_buffers():
        b[...] = rng.integers(1, 9, size=b.shape) if b.dtype.kind == "i" else rng.random(b.shape) + 0.5


@pytest.mark.parametrize("name", list(LAYERS))
def test_every_layer_state_dict_round_trips_with_buffers_and_frozen_parameters(name):
    src = nn.Sequential(LAYERS[name](0), nn.ReLU())
    _scramble(src, 1)
    src[0].weight.requires_grad = False  # frozen: still saved and restored
    state = src.state_dict()
    assert list(state) == [f"0.{k}" for k in KEYS[name]]
    dst = nn.Sequential(LAYERS[name](5), nn.ReLU())
    arrays = [p.data for p in dst.parameters(include_frozen=True)] + dst.buffers()
    dst.load_state_dict(state)
    for k, v in dst.state_dict().items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)
        assert v.dtype == state[k].dtype
    assert all(a is b for a, b in zip(arrays, [p.data for p in dst.parameters(include_frozen=True)] + dst.buffers()))
    assert "0.weight" not in dict(src.named_parameters()) and "0.weight" in dict(src.named_parameters(True))


def test_load_state_dict_checks_buffers_and_frozen_parameters_before_changing_anything():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    net[0].requires_grad_(False)
    before = net.state_dict()
    for edit, message in [
        (lambda s: s.pop("1.running_var"), r"missing keys \['1.running_var'\]"),
        (lambda s: s.pop("0.bias"), r"missing keys \['0.bias'\]"),
        (lambda s: s.update({"1.running_mean": np.zeros(3, np.float32)}), r"'1.running_mean' has shape \(3,\)"),
        (lambda s: s.update({"1.num_batches_tracked": np.array(2.0)}), "'1.num_batches_tracked' has dtype float64"),
        (lambda s: s.update({"0.weight": np.zeros((2, 1, 3, 3))}), "'0.weight' has dtype float64"),
    ]:
        state = {k: v + 1 for k, v in before.items()}
        edit(state)
        with pytest.raises(ValueError, match=message):
            net.load_state_dict(state)
        for k, v in net.state_dict().items():
            np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_module_api_buffers_modules_and_freezing():
    class Net(nn.Module):
        def __init__(self):
            self.body = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2), nn.ReLU())
            self.head = nn.Linear(2, 1)
            self.register_buffer("scale", np.ones(1, np.float32))
            self.register_buffer("cache", np.zeros(2, np.float32), persistent=False)

        def forward(self, x):
            return self.head(self.body(x).mean(axis=(2, 3))) * self.scale

    net = Net()
    assert [n for n, _ in net.named_buffers()] == [
        "body.1.running_mean", "body.1.running_var", "body.1.num_batches_tracked", "scale", "cache"]
    assert "cache" not in net.state_dict() and "scale" in net.state_dict()
    assert [n for n, _ in net.named_modules()] == ["", "body", "body.0", "body.1", "body.2", "head"]
    assert net.requires_grad_(False).parameters() == [] and len(net.parameters(include_frozen=True)) == 5
    net.requires_grad_()
    assert len(net.parameters()) == 5
    with pytest.raises(TypeError, match="must be a NumPy array"):
        net.register_buffer("bad", [1, 2])
    with pytest.raises(ValueError, match="invalid buffer name"):
        net.register_buffer("_private", np.zeros(1))
    assert isinstance(nn.Parameter(np.zeros(2)), Tensor)


def test_train_eval_switch_dropout_and_batchnorm_together():
    net = nn.Sequential(nn.Linear(3, 4, dtype=F64), nn.BatchNorm1d(4, dtype=F64), nn.Dropout(0.5, seed=0))
    x = rand(8, 3)
    net(x)
    assert int(net[1].num_batches_tracked) == 1
    net.eval()
    assert not any(m.training for m in net.modules())
    a, b = net(x).data, net(x).data
    np.testing.assert_array_equal(a, b)  # no dropout, running statistics
    assert int(net[1].num_batches_tracked) == 1
    net.train()
    assert all(m.training for m in net.modules())
    net(x)
    assert int(net[1].num_batches_tracked) == 2


# ---------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("make, shape, message", [
    (lambda: nn.Conv2d(3, 4, 3), (3, 8, 8), r"Conv2d\(3, 4, kernel_size=\(3, 3\).*must be 4-D \(N, C, H, W\), "
                                            r"got shape \(3, 8, 8\)"),
    (lambda: nn.Conv2d(3, 4, 3), (1, 2, 8, 8), r"Conv2d\(3, 4.*has 2 channels \(shape \(1, 2, 8, 8\)\), expected 3"),
    (lambda: nn.Conv2d(3, 4, 5, padding=1), (1, 3, 2, 8), r"Conv2d.*spatial size \(2, 8\).*smaller than the kernel"),
    (lambda: nn.Conv1d(2, 2, 3), (1, 2, 2), r"Conv1d\(2, 2.*spatial size \(2,\).*smaller than the kernel"),
    (lambda: nn.Conv1d(2, 2, 3), (1, 2, 5, 5), r"Conv1d.*must be 3-D \(N, C, L\)"),
    (lambda: nn.ConvTranspose2d(2, 2, 3), (2, 3, 3, 3), r"ConvTranspose2d\(2, 2.*has 3 channels"),
    (lambda: nn.MaxPool2d(3), (1, 1, 2, 5), r"MaxPool2d\(kernel_size=\(3, 3\).*spatial size \(2, 5\).*smaller"),
    (lambda: nn.AvgPool2d(2), (4, 4), r"AvgPool2d.*must be 4-D \(N, C, H, W\), got shape \(4, 4\)"),
    (lambda: nn.AdaptiveAvgPool2d(2), (1, 4, 4), r"AdaptiveAvgPool2d.*must be 4-D"),
    (lambda: nn.BatchNorm1d(3), (2, 3, 4, 5), r"BatchNorm1d\(3.*must be 2-D or 3-D"),
])
def test_bad_input_names_the_layer_and_the_shapes(make, shape, message):
    with pytest.raises(ValueError, match=message):
        make()(np.zeros(shape, np.float32))


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), "in_channels=3 and out_channels=4 must both be divisible by groups=2"),
    (lambda: nn.Conv2d(2, 4, 0), "kernel_size must be an int or 2 ints, each positive"),
    (lambda: nn.Conv2d(2, 4, 3, stride=2, padding="same"), "padding='same' needs stride 1"),
    (lambda: nn.Conv2d(2, 4, 3, padding="full"), "padding must be"),
    (lambda: nn.Conv2d(2, 4, 3, padding_mode="mirror"), "padding_mode must be one of"),
    (lambda: nn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=2), "output_padding .* smaller than the stride"),
    (lambda: nn.MaxPool2d(2, padding=2), r"padding \(2, 2\) must be at most half the kernel size"),
    (lambda: nn.BatchNorm2d(0), "num_features must be a positive int"),
    (lambda: nn.BatchNorm2d(2, momentum=1.5), r"momentum must be in \[0.0, 1.0\]"),
    (lambda: nn.Embedding(3, 2, padding_idx=3), r"padding_idx must be an int in \[-3, 3\)"),
    (lambda: nn.GELU("fast"), "approximate must be"),
])
def test_bad_hyperparameters_are_refused_at_construction(make, message):
    with pytest.raises(ValueError, match=message):
        make()

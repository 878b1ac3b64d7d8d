"""In-place API and version counters (PyTorch's rule).

In-place methods return the tensor itself; a leaf that requires grad changes only under
``no_grad()``; a tensor in a recorded graph never changes in place; every in-place change
bumps a version shared with views, and backward refuses an op whose tensors changed after
it ran. A parameter's array is read-only, so NumPy writes cannot bypass the versions.
Each guard has a twin test showing the wrong gradient the user would get without it.
"""

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite import Tensor, autograd, no_grad, ops
from tinygrad_lite.optim import SGD, Adam, RMSprop

MODIFIED = "modified by an in-place operation"


def _base():
    return np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])


# ------------------------------------------------------- methods and operators
def _iadd(t):
    t += 2.0
    return t


def _isub(t):
    t -= 2.0
    return t


def _imul(t):
    t *= 2.0
    return t


def _idiv(t):
    t /= 2.0
    return t


INPLACE = {
    "add_": (lambda t: t.add_(2.0), lambda a: a + 2.0),
    "sub_": (lambda t: t.sub_(2.0), lambda a: a - 2.0),
    "mul_": (lambda t: t.mul_(2.0), lambda a: a * 2.0),
    "div_": (lambda t: t.div_(2.0), lambda a: a / 2.0),
    "zero_": (lambda t: t.zero_(), lambda a: np.zeros_like(a)),
    "fill_": (lambda t: t.fill_(7.0), lambda a: np.full_like(a, 7.0)),
    "copy_": (lambda t: t.copy_(np.array([1.0, 2.0, 3.0])), lambda a: np.broadcast_to([1.0, 2.0, 3.0], a.shape)),
    "clamp_": (lambda t: t.clamp_(-3.0, 4.0), lambda a: np.clip(a, -3.0, 4.0)),
    "+=": (_iadd, lambda a: a + 2.0),
    "-=": (_isub, lambda a: a - 2.0),
    "*=": (_imul, lambda a: a * 2.0),
    "/=": (_idiv, lambda a: a / 2.0),
}


def _setitem(t):
    t[0, 1:] = 9.0


def _setitem_expected(a):
    a = a.copy()
    a[0, 1:] = 9.0
    return a


ALL_CHANGES = {**{k: v[0] for k, v in INPLACE.items()}, "t[idx] = v": _setitem}


@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_methods_and_operators_return_the_tensor_itself_and_mutate_it(name):
    change, expected = INPLACE[name]
    t = Tensor(_base())
    data, version = t.data, t.version
    assert change(t) is t
    assert t.data is data  # the same memory, changed
    np.testing.assert_array_equal(t.data, expected(_base()))
    if name == "clamp_":  # two bounds: at least one version step
        assert t.version > version
    else:
        assert t.version == version + 1


def test_setitem_mutates_and_bumps_the_version():
    t = Tensor(_base())
    data = t.data
    _setitem(t)
    assert t.data is data and t.version == 1
    np.testing.assert_array_equal(t.data, _setitem_expected(_base()))


def test_versions_count_every_change():
    t = Tensor(_base())
    for i, change in enumerate(ALL_CHANGES.values(), start=1):
        before = t.version
        change(t)
        assert t.version > before, i


@pytest.mark.parametrize("name", list(ALL_CHANGES))
def test_inplace_on_a_leaf_that_requires_grad_with_grad_on_is_refused(name):
    w = Tensor(_base(), requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        ALL_CHANGES[name](w)
    np.testing.assert_array_equal(w.data, _base())
    assert w.version == 0


@pytest.mark.parametrize("name", list(ALL_CHANGES))
def test_inplace_on_a_parameter_under_no_grad_changes_the_same_object(name):
    w = Tensor(_base(), requires_grad=True)
    ident, data = id(w), w.data
    with no_grad():
        ALL_CHANGES[name](w)
    assert id(w) == ident and w.data is data and w.requires_grad and w.is_leaf
    assert w.version >= 1
    assert not w.data.flags.writeable  # still read-only outside the versioned API
    expected = _setitem_expected(_base()) if name == "t[idx] = v" else INPLACE[name][1](_base())
    np.testing.assert_array_equal(w.data, expected)


def test_manual_sgd_update_under_no_grad_is_in_place():
    p = Tensor(_base(), requires_grad=True)
    (p * p).sum().backward()
    alias, data, ident = p, p.data, id(p)
    with no_grad():
        p -= 0.1 * p.grad
    assert p is alias and id(p) == ident and p.data is data
    np.testing.assert_allclose(p.data, _base() - 0.1 * 2 * _base(), rtol=1e-15)
    assert p.version == 1


@pytest.mark.parametrize("name", list(ALL_CHANGES))
def test_inplace_on_a_tensor_in_a_recorded_graph_is_refused(name):
    w = Tensor(_base(), requires_grad=True)
    y = w * 2.0
    with pytest.raises(RuntimeError, match="out-of-place"):
        ALL_CHANGES[name](y)
    np.testing.assert_array_equal(y.data, 2.0 * _base())
    y.sum().backward()  # the graph is intact
    np.testing.assert_array_equal(w.grad, np.full((2, 3), 2.0))


# ------------------------------------------------------------------ views
VIEWS = {
    "reshape": lambda t: t.reshape(3, 2),
    "T": lambda t: t.T,
    "t[1:]": lambda t: t[1:],
    "detach": lambda t: t.detach(),
}


@pytest.mark.parametrize("view", list(VIEWS))
def test_views_share_the_version_counter(view):
    t = Tensor(_base())
    v = VIEWS[view](t)
    assert np.shares_memory(v.data, t.data)
    v.add_(1.0)
    assert t.version == v.version == 1
    np.testing.assert_array_equal(t.data[1:], _base()[1:] + 1.0)
    t.mul_(2.0)
    assert t.version == v.version == 2
    w = VIEWS[view](v) if view != "reshape" else v.reshape(2, 3)  # a view of a view
    w.sub_(1.0)
    assert t.version == v.version == w.version == 3


@pytest.mark.parametrize("view", ["reshape", "T", "t[1:]"])
def test_inplace_on_a_view_of_a_parameter_with_grad_on_is_refused(view):
    w = Tensor(_base(), requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        VIEWS[view](w).add_(1.0)
    np.testing.assert_array_equal(w.data, _base())
    assert w.version == 0


# ------------------------------------------------ backward after a change
def _sgd_like(opt_cls):
    def scenario():
        w = Tensor(_base(), requires_grad=True)
        opt = opt_cls([w], lr=0.1)
        (w * w).sum().backward()  # a first step's gradient
        loss = (w * w).sum()  # the next forward
        correct = 2.0 * w.data.copy()
        opt.step()  # too early: before loss.backward()
        w.grad = None
        return loss, w, correct, "mul"

    return scenario


def _no_grad_iadd():
    w = Tensor(_base(), requires_grad=True)
    loss = (w * w).sum()
    correct = 2.0 * _base()
    with no_grad():
        w += 1.0
    return loss, w, correct, "mul"


def _through_view(view):
    def scenario():
        x = Tensor(_base())  # a constant saved by mul for w's gradient
        w = Tensor(np.ones((2, 3)), requires_grad=True)
        loss = (w * x).sum()
        VIEWS[view](x).add_(1.0)  # x needs no grad: allowed, but bumps x's version
        return loss, w, _base(), "mul"

    return scenario


def _view_saved_base_changed():
    x = Tensor(_base())
    v = x[1:]  # the view is what mul saves
    w = Tensor(np.ones((1, 3)), requires_grad=True)
    loss = (w * v).sum()
    x.add_(1.0)  # the change goes through the base
    return loss, w, _base()[1:], "mul"


def _param_view(view):
    def scenario():
        w = Tensor(_base(), requires_grad=True)
        loss = (w * w).sum()
        with no_grad():
            VIEWS[view](w).mul_(3.0)
        return loss, w, 2.0 * _base(), "mul"

    return scenario


def _exp_output(through):
    def scenario():
        x = Tensor(_base() / 4, requires_grad=True)
        y = x.exp()
        if through == "no_grad":
            with no_grad():
                y.mul_(2.0)
        else:  # a detached alias needs no no_grad
            y.detach().mul_(2.0)
        loss = (y * np.arange(6.0).reshape(2, 3)).sum()  # made after the change: only exp's check can fire
        return loss, x, np.exp(_base() / 4) * np.arange(6.0).reshape(2, 3), "exp"

    return scenario


# Each scenario returns (loss, leaf, the leaf's correct gradient, the op backward must name).
SCENARIOS = {
    "SGD.step before backward": _sgd_like(SGD),
    "Adam.step before backward": _sgd_like(Adam),
    "no_grad w += 1": _no_grad_iadd,
    **{f"constant changed through {v}": _through_view(v) for v in VIEWS},
    "saved view changed through its base": _view_saved_base_changed,
    **{f"parameter changed through {v}": _param_view(v) for v in VIEWS},
    "exp output changed under no_grad": _exp_output("no_grad"),
    "exp output changed through detach": _exp_output("detach"),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_backward_through_an_op_whose_tensor_changed_in_place_raises_naming_it(name):
    loss, leaf, _, op = SCENARIOS[name]()
    prior = np.full(leaf.shape, 0.5)
    leaf.grad = prior
    with pytest.raises(RuntimeError, match=MODIFIED) as info:
        loss.backward()
    assert f"'{op}'" in str(info.value)
    assert leaf.grad is prior and np.array_equal(prior, np.full(leaf.shape, 0.5))  # nothing written


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_without_the_version_check_the_same_scenario_gives_a_wrong_gradient(name, monkeypatch):
    monkeypatch.setattr(autograd, "_check_versions", lambda node: None)
    loss, leaf, correct, _ = SCENARIOS[name]()
    loss.backward()  # silently
    assert not np.allclose(leaf.grad, correct)


def test_changing_an_index_tensor_after_indexing_cannot_change_the_gradient():
    # PyTorch raises here (IndexBackward saves the indices with their version); tinygrad_lite
    # copies an index when it indexes, so backward scatters into the elements the forward read.
    w = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    idx = Tensor(np.array([0, 1]))
    loss = (w[idx] * np.array([10.0, 20.0])).sum()
    idx[0] = 2
    loss.backward()
    np.testing.assert_array_equal(w.grad, [10.0, 20.0, 0.0])
    mask = np.array([True, False, True])
    w.grad = None
    loss = (w[mask] * np.array([10.0, 20.0])).sum()
    mask[1] = True
    loss.backward()
    np.testing.assert_array_equal(w.grad, [10.0, 0.0, 20.0])


def test_changing_a_where_condition_tensor_after_np_where_is_caught():
    w = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    c = Tensor(np.array([True, False, True]))
    loss = np.where(c, w, 0.0).sum()
    c[1] = True
    with pytest.raises(RuntimeError, match=MODIFIED):  # as ops.where(c, w, 0.0) already does
        loss.backward()


def test_changing_a_where_condition_tensor_after_ops_where_is_caught():
    w = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    c = Tensor(np.array([True, False, True]))
    loss = ops.where(c, w, 0.0).sum()
    c[1] = True
    with pytest.raises(RuntimeError, match=MODIFIED) as info:
        loss.backward()
    assert "'where'" in str(info.value)


def test_the_right_order_works():
    w = Tensor(_base(), requires_grad=True)
    opt = SGD([w], lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        expected = w.data - 0.1 * 2.0 * w.data
        opt.step()
        np.testing.assert_allclose(w.data, expected, rtol=1e-15)
    assert w.version == 2 and not w.data.flags.writeable


def test_changing_a_copy_is_fine():
    x = Tensor(_base())
    w = Tensor(np.ones((2, 3)), requires_grad=True)
    loss = (w * x).sum()
    x.detach().numpy().copy()[...] = 0.0
    ops.copy(x).add_(1.0)
    loss.backward()
    np.testing.assert_array_equal(w.grad, _base())


# --------------------------------------------------------- read-only arrays
def _write_data(w):
    w.data[...] = 0.0


def _iadd_data(w):
    w.data += 1.0


def _write_detached(w):
    np.asarray(w.detach())[...] = 0.0


def _write_numpy(w):
    w.numpy()[0, 0] = 0.0


@pytest.mark.parametrize("write", [_write_data, _iadd_data, _write_detached, _write_numpy])
def test_a_parameters_array_is_read_only_to_numpy(write):
    w = Tensor(_base(), requires_grad=True)
    loss = (w * w).sum()
    with pytest.raises(ValueError, match="read-only"):
        write(w)
    with no_grad():  # also after a versioned change
        w.add_(0.0)
    with pytest.raises(ValueError, match="read-only"):
        write(w)
    np.testing.assert_array_equal(w.data, _base())
    w.grad = None
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_a_writable_parameter_array_would_give_a_silently_wrong_gradient():
    """What the read-only flag prevents: a NumPy write bumps no version, so backward uses
    the changed saved value without complaint."""
    w = Tensor(_base(), requires_grad=True)
    loss = (w * w).sum()
    w.data.setflags(write=True)  # what the engine refuses to leave open
    w.data[...] = 0.0
    loss.backward()
    assert w.version == 0
    assert not np.allclose(w.grad, 2.0 * _base())


def test_optimizers_leave_the_parameter_read_only():
    for opt_cls in (SGD, Adam, RMSprop):
        w = Tensor(_base(), requires_grad=True)
        opt = opt_cls([w], lr=0.1)
        (w * w).sum().backward()
        opt.step()
        assert w.version == 1 and not w.data.flags.writeable


def test_tensor_copies_and_from_numpy_shares():
    a = _base()
    t = Tensor(a)
    a[0, 0] = 100.0
    assert t.data[0, 0] == 1.0 and not np.shares_memory(t.data, a)
    b = _base()
    s = tg.from_numpy(b)
    b[0, 0] = 100.0
    assert s.data[0, 0] == 100.0 and np.shares_memory(s.data, b)


# ---------------------------------------------------------------- dtypes
@pytest.mark.parametrize("opt_cls", [SGD, Adam, RMSprop])
def test_optimizers_refuse_a_gradient_of_another_dtype(opt_cls):
    w = Tensor(_base(), requires_grad=True)
    opt = opt_cls([w], lr=0.1)
    w.grad = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="float64") as info:
        opt.step()
    assert "float32" in str(info.value)
    np.testing.assert_array_equal(w.data, _base())
    assert w.version == 0


@pytest.mark.parametrize("as_tensor", [True, False])
def test_linear_refuses_an_input_of_another_dtype(as_tensor):
    layer = tg.nn.Linear(3, 2, dtype=np.float64, rng=0)
    x = np.ones((4, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="float32") as info:
        layer(Tensor(x) if as_tensor else x)
    assert "float64" in str(info.value)
    assert layer(Tensor(x.astype(np.float64))).dtype == np.float64

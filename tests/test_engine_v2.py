"""Engine v2: per-call backward state, leaf accumulation under a lock and only after a
successful sweep, reentrant backward (from a VJP, a hook, another thread), and gradient-array
ownership tracked by an owned flag (never a reference count).

Every guard has a test that shows what goes wrong without it: the lock (an unlocked run
with a slow ``+=`` loses updates; a recording lock proves writes happen while it is held)
and the owned flag (an op that breaks its ``fresh_grads`` promise gets its array corrupted).
"""

import contextlib
import sys
import threading
import time

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite import Tensor, autograd, defop, ops

RTOL = 1e-12  # float64 sums in another order: equal to rounding

# ------------------------------------------------------------------- threads
N_THREADS, STEPS, TRIALS = 8, 3, 20
_RNG = np.random.default_rng(20240601)
W0 = _RNG.standard_normal((4, 3))
B0 = _RNG.standard_normal(3)
BATCHES = [_RNG.standard_normal((5, 4)) for _ in range(N_THREADS * STEPS)]


def _loss(W, b, X):
    """A loss with a broadcast bias, a parameter used twice and a non-uniform cotangent."""
    h = ops.tanh(X @ W + b)
    return ((h + 1.0) ** 3).mean() + (W * W).sum() * 0.01 + ops.logsumexp(h, axis=1).sum()


def _params():
    return Tensor(W0, requires_grad=True), Tensor(B0, requires_grad=True)


def _sequential_sum():
    """Σ over every batch of the gradient computed alone, one backward at a time."""
    W, b = _params()
    total_W, total_b = np.zeros_like(W0), np.zeros_like(B0)
    for X in BATCHES:
        W.grad = b.grad = None
        _loss(W, b, Tensor(X)).backward()
        total_W += W.grad
        total_b += b.grad
    return total_W, total_b


EXPECTED_W, EXPECTED_B = _sequential_sum()


def _run_threads(W, b):
    """N_THREADS threads, each STEPS forward+backward passes over W and b, released together."""
    barrier = threading.Barrier(N_THREADS)
    errors = []

    def work(i):
        try:
            for s in range(STEPS):
                barrier.wait(timeout=10)
                _loss(W, b, Tensor(BATCHES[i * STEPS + s])).backward()
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a backward thread hung"
    if errors:
        raise errors[0]


def _grads_match(W, b):
    return np.allclose(W.grad, EXPECTED_W, rtol=RTOL, atol=0) and np.allclose(b.grad, EXPECTED_B, rtol=RTOL, atol=0)


@pytest.fixture
def busy_switching():
    """Switch threads as often as the interpreter allows: the most interleavings per run."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def test_threads_sharing_parameters_end_with_the_sum_of_sequential_gradients(busy_switching):
    for trial in range(TRIALS):
        W, b = _params()
        _run_threads(W, b)
        np.testing.assert_allclose(W.grad, EXPECTED_W, rtol=RTOL, atol=0, err_msg=f"trial {trial}")
        np.testing.assert_allclose(b.grad, EXPECTED_B, rtol=RTOL, atol=0, err_msg=f"trial {trial}")


class _SlowAccumulator(np.ndarray):
    """A ``.grad`` whose ``+=`` reads, sleeps, then writes: a race window wide enough that
    unsynchronised accumulation from several threads loses updates."""

    def __iadd__(self, other):
        before = np.array(self)
        time.sleep(1e-4)
        self[...] = before + other
        return self


def _slow_trials(n):
    """How many of n threaded trials (with slow ``+=`` on both .grad) gave the exact sum."""
    good = 0
    for _ in range(n):
        W, b = _params()
        W.grad = np.zeros_like(W0).view(_SlowAccumulator)
        b.grad = np.zeros_like(B0).view(_SlowAccumulator)
        _run_threads(W, b)
        good += _grads_match(W, b)
    return good


def test_the_grad_lock_is_what_keeps_slow_accumulation_exact(monkeypatch, busy_switching):
    assert _slow_trials(5) == 5  # with the engine's lock: exact every time
    monkeypatch.setattr(autograd, "_GRAD_LOCK", contextlib.nullcontext())
    assert _slow_trials(10) < 10  # the same runs without it lose updates


class _RecordingLock:
    """A lock that knows which thread holds it."""

    def __init__(self):
        self._lock = threading.Lock()
        self.owner = None

    def __enter__(self):
        self._lock.acquire()
        self.owner = threading.get_ident()

    def __exit__(self, *exc):
        self.owner = None
        self._lock.release()


class _WatchedTensor(Tensor):
    """A leaf that records, at every write of ``.grad``, whether the engine's lock was held."""

    __slots__ = ()
    lock: _RecordingLock | None = None
    log: list = []

    @property
    def grad(self):
        return Tensor.grad.__get__(self)

    @grad.setter
    def grad(self, value):
        lock = type(self).lock
        if lock is not None:
            type(self).log.append(lock.owner == threading.get_ident())
        Tensor.grad.__set__(self, value)


def _watched_run(monkeypatch, lock_for_engine):
    recorder = _RecordingLock()
    monkeypatch.setattr(autograd, "_GRAD_LOCK", recorder if lock_for_engine is None else lock_for_engine)
    W = _WatchedTensor(W0, requires_grad=True)
    b = _WatchedTensor(B0, requires_grad=True)
    monkeypatch.setattr(_WatchedTensor, "lock", recorder)
    monkeypatch.setattr(_WatchedTensor, "log", [])
    _run_threads(W, b)
    return _WatchedTensor.log, W, b


def test_leaf_gradients_are_written_only_while_holding_the_lock(monkeypatch):
    log, W, b = _watched_run(monkeypatch, None)
    assert len(log) == 2 * N_THREADS * STEPS and all(log)
    assert _grads_match(W, b)


def test_the_lock_recorder_notices_writes_made_without_the_lock(monkeypatch):
    log, _, _ = _watched_run(monkeypatch, contextlib.nullcontext())
    assert log and not any(log)


# ------------------------------------------------------- failed backward
@defop
def _explode(x):
    """x · 1 whose VJP always fails."""

    def vjp(g):
        raise ValueError("boom in a VJP")

    return x * 1.0, vjp


@pytest.mark.parametrize("explode_first", [True, False])
def test_a_failing_backward_leaves_every_grad_unchanged(explode_first):
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    prior = np.array([10.0, 20.0])
    a.grad = prior
    e = _explode(b)
    loss = ((e * a) if explode_first else (a * e)).sum() + (a * a * 3.0).sum()
    with pytest.raises(ValueError, match="boom"):
        loss.backward()
    assert a.grad is prior and np.array_equal(prior, [10.0, 20.0])
    assert b.grad is None


def test_a_failing_backward_runs_no_leaf_hook_and_writes_no_leaf_gradient():
    """A leaf's gradient is complete only once the whole sweep is done: a sweep that fails, in
    either order of the VJPs, has shown no leaf hook a partial gradient and written no .grad."""
    reached = []
    for explode_first in (True, False):
        a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
        a.register_hook(lambda g: reached.append(g.copy()))
        e = _explode(Tensor(np.array([3.0, 4.0]), requires_grad=True))
        loss = ((e * a) if explode_first else (a * e)).sum()
        with pytest.raises(ValueError):
            loss.backward()
        assert a.grad is None
    assert not reached
    (a * 3.0).sum().backward()  # and a sweep that succeeds shows the hook the whole gradient once
    assert len(reached) == 1 and np.array_equal(reached[0], [3.0, 3.0])


def test_backward_keeps_nothing_on_intermediate_nodes():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 2.0
    (h * h).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(x.grad, 8.0 * x.data, rtol=RTOL)


# ------------------------------------------------------------- reentrancy
def test_backward_called_inside_a_vjp_gives_correct_results():
    q = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = Tensor(np.array([3.0, 4.0]), requires_grad=True)

    @defop
    def reenter(a):
        def vjp(g):
            (q * q * 3.0).sum().backward()  # an independent graph
            (x * 5.0).sum().backward()  # a graph sharing the outer sweep's leaf
            return g * 2.0

        return a * 2.0, vjp

    (reenter(x) * x).sum().backward()  # d/dx 2x² = 4x
    np.testing.assert_allclose(q.grad, 6.0 * q.data, rtol=RTOL)
    np.testing.assert_allclose(x.grad, 4.0 * x.data + 5.0, rtol=RTOL)


def test_backward_called_inside_a_hook_gives_correct_results():
    q = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    h = x * 1.0
    calls = []

    def hook(g):
        calls.append(g.copy())
        (q * q).sum().backward()
        (x * 7.0).sum().backward()
        return g * 10.0  # and replace the gradient

    h.register_hook(hook)
    (h * h).sum().backward()
    np.testing.assert_allclose(calls[0], 2.0 * x.data, rtol=RTOL)
    np.testing.assert_allclose(q.grad, 2.0 * q.data, rtol=RTOL)
    np.testing.assert_allclose(x.grad, 20.0 * x.data + 7.0, rtol=RTOL)


def _vjp_running_backward_through(h, retain_graph):
    @defop
    def outer(a):
        def vjp(g):
            (h * 3.0).sum().backward(retain_graph=retain_graph)  # through h's node, which the outer sweep needs
            return g * 5.0

        return a * 5.0, vjp

    return outer


def test_a_reentrant_backward_through_the_outer_graph_with_retain_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 2.0
    loss = _vjp_running_backward_through(h, True)(h).sum() + h.sum()
    loss.backward()
    np.testing.assert_allclose(x.grad, [2 * 3 + 2 * 5 + 2] * 2, rtol=RTOL)


def test_a_reentrant_backward_that_frees_the_outer_graph_raises_graph_freed():
    # PyTorch: "Trying to backward through the graph a second time ... specify retain_graph=True".
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 2.0
    loss = _vjp_running_backward_through(h, False)(h).sum() + h.sum()
    with pytest.raises(tg.GraphFreedError, match="retain_graph=True"):
        loss.backward()


def _in_thread(fn):
    errors = []

    def run():
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), "backward in another thread hung (a lock held during the sweep?)"
    if errors:
        raise errors[0]


def test_backward_in_another_thread_started_from_a_vjp():
    q = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = Tensor(np.array([3.0, 4.0]), requires_grad=True)

    @defop
    def spawn(a):
        def vjp(g):
            _in_thread(lambda: (q * x).sum().backward())
            return g * 3.0

        return a * 3.0, vjp

    spawn(x).sum().backward()
    np.testing.assert_allclose(q.grad, x.data, rtol=RTOL)
    np.testing.assert_allclose(x.grad, q.data + 3.0, rtol=RTOL)


def test_backward_in_another_thread_started_from_a_leaf_hook():
    x = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    q = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x.register_hook(lambda g: _in_thread(lambda: (q * x.detach()).sum().backward()))
    (x * 4.0).sum().backward()
    np.testing.assert_allclose(x.grad, [4.0, 4.0], rtol=RTOL)
    np.testing.assert_allclose(q.grad, x.data, rtol=RTOL)


# -------------------------------------------------------------- ownership
def test_a_vjp_returning_a_stashed_array_never_gets_it_corrupted():
    stash = np.array([1.0, 2.0, 3.0])

    @defop
    def stashy(x):
        return x * 1.0, lambda g: stash  # the same array every call

    x = Tensor(np.zeros(3), requires_grad=True)
    for _ in range(2):  # two backward calls, two consumers of a leaf and of an intermediate
        h = x * 2.0
        loss = stashy(h).sum() + stashy(h).sum() + stashy(x).sum() + stashy(x).sum()
        loss.backward()
    np.testing.assert_array_equal(stash, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(x.grad, 2 * (2 * 2.0 + 2) * stash, rtol=RTOL)
    assert not np.shares_memory(x.grad, stash)


def _passthrough_op(vjps):
    @defop(fresh_grads=True)
    def passthrough(a, b):
        return a + b, vjps

    return passthrough


@pytest.mark.parametrize("vjps", [(lambda g: g, lambda g: g), (lambda g: g[...], lambda g: g.reshape(g.shape))],
                         ids=["g itself", "views of g"])
def test_a_fresh_op_returning_g_or_a_view_of_it_is_not_added_into(vjps):
    """fresh_grads=True allows returning g or a view of it: the engine must detect those."""
    passthrough = _passthrough_op(vjps)
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    weights = np.array([1.0, 2.0, 3.0])
    for _ in range(2):
        loss = (passthrough(a, b) * weights).sum() + (a * 10.0).sum()
        loss.backward()
    np.testing.assert_allclose(a.grad, 2 * (weights + 10.0), rtol=RTOL)
    np.testing.assert_allclose(b.grad, 2 * weights, rtol=RTOL)
    assert not np.shares_memory(a.grad, b.grad)


def test_breaking_the_fresh_grads_promise_corrupts_the_stash():
    """The owned flag is what protects a VJP's arrays: an op that wrongly promises fresh
    arrays (fresh_grads=True while returning a stash) gets its stash added into."""
    stash = np.array([1.0, 2.0, 3.0])

    @defop(fresh_grads=True)
    def liar(x):
        return x * 1.0, lambda g: stash

    x = Tensor(np.zeros(3), requires_grad=True)
    (liar(x).sum() + liar(x).sum()).backward()
    assert not np.array_equal(stash, [1.0, 2.0, 3.0])


def test_two_leaves_given_the_same_gradient_do_not_share_memory():
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    z = a + b
    z.backward(np.array([1.0, 2.0, 3.0]), retain_graph=True)
    assert not np.shares_memory(a.grad, b.grad)
    z.backward(np.array([1.0, 2.0, 3.0]))  # accumulating into a.grad must not touch b.grad
    np.testing.assert_array_equal(a.grad, [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(b.grad, [2.0, 4.0, 6.0])
    a.grad += 100.0
    np.testing.assert_array_equal(b.grad, [2.0, 4.0, 6.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backward_never_modifies_or_aliases_the_users_gradient(dtype):
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    for root in (a + b, a * 1.0, a):
        u = np.array([1.0, 2.0, 3.0], dtype=dtype)
        kept = u.copy()
        a.grad = b.grad = None
        retain = root is not a
        root.backward(u, retain_graph=retain)
        root.backward(u)
        np.testing.assert_array_equal(u, kept)
        for leaf in (a, b):
            if leaf.grad is not None:
                assert not np.shares_memory(leaf.grad, u)
                np.testing.assert_array_equal(leaf.grad, 2 * kept)


def test_grad_function_results_do_not_alias_the_cotangent_or_each_other():
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    u = np.array([1.0, 2.0, 3.0])
    ga, gb = tg.grad(a + b, [a, b], grad_outputs=u)
    assert not np.shares_memory(ga.data, gb.data)
    assert not np.shares_memory(ga.data, u) and not np.shares_memory(gb.data, u)
    assert a.grad is None and b.grad is None


def test_a_hook_returning_a_stashed_array_never_gets_it_corrupted():
    stash = np.array([5.0, 5.0, 5.0])
    x = Tensor(np.ones(3), requires_grad=True)
    x.register_hook(lambda g: stash)
    h = Tensor(np.ones(3), requires_grad=True)
    m = h * 1.0
    m.register_hook(lambda g: stash)
    for _ in range(2):
        (x * 2.0).sum().backward()
        (m + h).sum().backward(retain_graph=True)
    np.testing.assert_array_equal(stash, [5.0, 5.0, 5.0])
    np.testing.assert_array_equal(x.grad, [10.0, 10.0, 10.0])
    np.testing.assert_array_equal(h.grad, [12.0, 12.0, 12.0])
    assert not np.shares_memory(x.grad, stash)


def test_a_hook_that_keeps_the_gradient_it_was_given_never_sees_it_change():
    seen = []
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x.register_hook(lambda g: seen.append(g))  # e.g. logging gradients
    (x * 3.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])  # PyTorch: still 3, the hook's tensor is never added into
    np.testing.assert_array_equal(seen[1], [3.0, 3.0])

"""detect_anomaly(): NaN/Inf raise at the op that made them, naming it and the user's line."""

import warnings

import numpy as np
import pytest

import tinygrad_lite as tg


def test_forward_nan_names_the_op_and_this_file():
    x = tg.Tensor(np.array([1.0, -1.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match=r"op 'log' produced NaN.*test_anomaly.py:\d+"):
            x.log()


def test_backward_inf_names_the_op_and_the_argument():
    x = tg.Tensor(np.array([4.0, 0.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with tg.detect_anomaly():
            y = x.sqrt().sum()  # forward is finite; d√x/dx = ∞ at 0
            with pytest.raises(tg.AnomalyError, match=r"backward of op 'sqrt' produced Inf.*argument 0.*test_anomaly"):
                y.backward()
    assert x.grad is None  # nothing was written


def test_off_by_default_and_restored_on_exit():
    x = tg.Tensor(np.array([-1.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(x.log().item())  # NumPy semantics outside anomaly mode
        with tg.detect_anomaly():
            pass
        assert np.isnan(x.log().item())


def test_finite_graphs_run_unchanged_in_anomaly_mode():
    rng = np.random.default_rng(0)
    w = tg.Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    x = rng.standard_normal((4, 3))
    with tg.detect_anomaly():
        (x @ w).tanh().log_softmax().sum().backward()
    reference = tg.Tensor(w.data.copy(), requires_grad=True)
    (x @ reference).tanh().log_softmax().sum().backward()
    np.testing.assert_array_equal(w.grad, reference.grad)

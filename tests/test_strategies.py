"""The Hypothesis strategies we ship draw what they promise."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from tinygrad_lite.testing.strategies import (
    ACTIVATIONS,
    arrays,
    away_from_kinks,
    broadcastable_shapes,
    mlp_specs,
    shapes,
)

FLOATS = st.sampled_from([np.float64, np.float32])


# -------------------------------------------------------------------- arrays
@given(data=st.data(), dtype=st.sampled_from([np.float64, np.float32, np.float16]))
def test_arrays_have_the_shape_dtype_and_range_asked_for(data, dtype):
    shape = data.draw(shapes())
    low = data.draw(st.sampled_from([-3.0, 0.1, 0.5]))
    high = low + data.draw(st.sampled_from([0.3, 2.0, 10.0]))
    x = data.draw(arrays(shape=shape, dtype=dtype, low=low, high=high))
    assert x.shape == shape and x.dtype == dtype
    assert np.all(np.isfinite(x)) and np.all((low <= x) & (x <= high))


@given(x=arrays(), y=arrays(shape=st.just((2, 3))), n=arrays(shape=5, dtype=np.int64, low=-2, high=2))
def test_arrays_take_any_shape_form_and_integer_dtypes(x, y, n):
    assert x.dtype == np.float64 and x.ndim <= 3 and all(1 <= s <= 4 for s in x.shape)
    assert y.shape == (2, 3)
    assert n.shape == (5,) and n.dtype == np.int64 and np.all(np.abs(n) <= 2)


@given(x=arrays(shape=(4,), elements=st.just(1.5)))
def test_arrays_use_the_elements_given(x):
    np.testing.assert_array_equal(x, 1.5)


@given(shape=shapes(min_dims=1, max_dims=2, min_side=2, max_side=3))
def test_shapes_bounds(shape):
    assert 1 <= len(shape) <= 2 and all(2 <= s <= 3 for s in shape)


# ----------------------------------------------------------- away_from_kinks
KINK_SETS = st.sampled_from([(0.0,), (-1.0, 1.0), (0.0, 0.5, 2.0), ()])


@given(data=st.data(), kinks=KINK_SETS, margin=st.sampled_from([1e-3, 1e-2, 0.05]), dtype=FLOATS)
def test_away_from_kinks_keeps_its_margin(data, kinks, margin, dtype):
    x = data.draw(away_from_kinks(shape=shapes(), kinks=kinks, margin=margin, dtype=dtype))
    assert x.dtype == dtype and np.all(np.isfinite(x))
    for kink in kinks:
        assert np.all(np.abs(x.astype(np.float64) - kink) >= margin * (1 - 1e-6)), (kink, x)
    assert np.all((x >= -3.0 - 2 * margin) & (x <= 3.0 + 2 * margin))


@given(data=st.data(), kinks=KINK_SETS, margin=st.sampled_from([1e-3, 1e-2, 0.05]), dtype=FLOATS)
def test_away_from_kinks_distinct_has_no_ties(data, kinks, margin, dtype):
    shape = data.draw(shapes(max_side=6))
    x = data.draw(away_from_kinks(shape=shape, kinks=kinks, margin=margin, distinct=True, dtype=dtype))
    assert x.shape == shape
    values = np.sort(x.astype(np.float64).reshape(-1))
    assert np.all(np.diff(values) >= margin * (1 - 1e-6)), values
    for kink in kinks:
        assert np.all(np.abs(values - kink) >= margin * (1 - 1e-6))
    if values.size:  # max over any axis has a unique winner
        assert np.count_nonzero(x == x.max()) == 1


@given(x=away_from_kinks(shape=(50,), kinks=(), distinct=True, low=0.5, high=3.0))
def test_away_from_kinks_distinct_stays_in_range_when_it_fits(x):
    assert np.all((0.5 <= x) & (x <= 3.0))


@pytest.mark.parametrize(
    "options, match", [({"kinks": (0.0, 0.01)}, "6·margin"), ({"margin": 0.0}, "margin must be > 0")]
)
def test_away_from_kinks_refuses_what_it_cannot_keep(options, match):
    @given(away_from_kinks(**options))
    def draw(x):
        pass

    with pytest.raises(InvalidArgument, match=match):
        draw()


# ------------------------------------------------------- broadcastable_shapes
@given(data=st.data(), n=st.integers(1, 4))
def test_broadcastable_shapes_broadcast(data, n):
    found = data.draw(broadcastable_shapes(n))
    assert len(found) == n
    target = np.broadcast_shapes(*found)
    parts = np.broadcast_arrays(*[np.zeros(s) for s in found])
    assert all(p.shape == target for p in parts)


@given(pair=broadcastable_shapes(2, min_dims=2, max_dims=2, max_side=3))
def test_broadcastable_shapes_bounds(pair):
    assert all(len(s) == 2 and all(1 <= d <= 3 for d in s) for s in pair)


# ----------------------------------------------------------------- mlp_specs
@given(spec=mlp_specs())
def test_mlp_specs_are_valid(spec):
    sizes, acts = spec["sizes"], spec["activations"]
    assert 1 <= len(sizes) - 2 <= 3 and len(acts) == len(sizes) - 2
    assert all(isinstance(s, int) and s >= 1 for s in sizes) and sizes[-1] >= 2
    assert set(acts) <= set(ACTIVATIONS) and spec["batch"] >= 1


@given(spec=mlp_specs(min_layers=2, max_layers=2, max_width=3, activations=("tanh",)))
def test_mlp_specs_options(spec):
    assert len(spec["sizes"]) == 4 and max(spec["sizes"][1:3]) <= 3 and spec["activations"] == ["tanh", "tanh"]

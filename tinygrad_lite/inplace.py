"""In-place changes: version stamps, writable windows onto read-only parameter arrays, refusals.

A tensor's memory carries a version (how many in-place changes) and a stamp (the clock when
the last one happened), kept on the tensor whose memory it is (``_vbase`` for views).
Backward compares stamps with the clock each op read when it ran (see `autograd`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .mode import _CLOCK, _LAST_STAMP

if TYPE_CHECKING:
    from .tensor import Tensor

__all__ = ["bump_version", "bump_versions", "inplace_refused", "store_inplace", "writable"]

Array = np.ndarray


class _writable:
    """Context: make a read-only parameter array writable for one versioned in-place write."""

    def __init__(self, data: Array, t: Tensor) -> None:
        self.data, self.t = data, t

    def __enter__(self) -> None:
        try:
            self.data.setflags(write=True)
        except ValueError:
            raise ValueError(
                f"in-place write into a tensor (shape {self.t.shape}, dtype {self.t.dtype}) whose memory is "
                f"read-only (a view of a read-only array)"
            ) from None

    def __exit__(self, *exc: object) -> None:
        self.data.setflags(write=False)


def store_inplace(data: Array, ufunc: np.ufunc | None, value: Any, name: str, t: Tensor) -> None:
    with _writable(data, t):
        if ufunc is None:
            data[...] = value
        else:
            ufunc(data, value, out=data, casting="same_kind")


def bump_versions(tensors: list[Tensor]) -> None:
    """`bump_version` for several tensors changed together, e.g. by an optimizer step (one stamp for all)."""
    stamp = _LAST_STAMP[0] = next(_CLOCK)
    for t in tensors:
        base = t._vbase if t._vbase is not None else t
        base._version += 1
        base._stamp = stamp


def bump_version(t: Tensor) -> None:
    """Record an in-place change made to ``t.data`` outside the Tensor API."""
    base = t._vbase if t._vbase is not None else t
    base._version += 1
    base._stamp = _LAST_STAMP[0] = next(_CLOCK)


def writable(t: Tensor) -> _writable:
    """Context for code that updates a parameter's array in place (``with writable(p): p.data -= u``);
    the caller bumps the version (`bump_version`)."""
    return _writable(t.data, t)


def inplace_refused(t: Tensor, name: str, other: Any) -> RuntimeError:
    what = f"tensor of shape {t.shape}, dtype {t.dtype}"
    if t._rg and t._ctx is None:
        return RuntimeError(
            f"{name}: in-place operation on a leaf tensor that requires grad ({what}) while grad mode is on; "
            f"wrap the update in `with tinygrad_lite.no_grad():` (as optimizers do)"
        )
    if t._rg:
        return RuntimeError(
            f"{name}: in-place operation on a tensor that is part of a recorded graph ({what}, made by "
            f"'{t._op.name}'); use the out-of-place form (x = x + y) so the graph stays exact"
        )
    return RuntimeError(
        f"{name}: in-place operation with an operand that requires grad on a {what} would have to record the "
        f"graph; use the out-of-place form (x = x + y)"
    )

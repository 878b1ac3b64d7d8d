"""Per-thread modes (grad, anomaly) and the clock that orders ops and in-place changes."""

from __future__ import annotations

import functools
import inspect
import itertools
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly", "TraceError", "replayed", "module_called",
           "is_traced", "refuse_traced", "is_tracing"]


class _Mode(threading.local):
    """Per-thread state (as in PyTorch): grad mode, anomaly mode, and the op being re-run
    on Tensors for a higher-order gradient (None outside that)."""

    enabled = True
    anomaly = False
    rerun: str | None = None
    trace: Any = None  # the recorder of a `tinygrad_lite.compile` trace running in this thread, or None


_MODE = _Mode()
# One clock orders ops and in-place changes: an op reads it before computing (its node's
# _clock), an in-place change stamps the memory it changed after writing (_stamp). Backward
# refuses a node any of whose tensors has a stamp later than its clock. next() is atomic.
_CLOCK = itertools.count(1)
_LAST_STAMP = [0]  # the latest stamp anywhere: nodes newer than it need no check at all


class TraceError(RuntimeError):
    """Something a compiled function does that a replay could not repeat exactly (raised while tracing)."""


def replayed(fn: Callable) -> Callable:
    """Mark a method or function that changes state outside the graph (``optimizer.step()``,
    ``zero_grad()``, a scheduler's ``step()``): inside a function being compiled, the call is
    recorded and a replay calls it again with the same arguments; elsewhere it just runs."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tracer = _MODE.trace
        if tracer is None:
            return fn(*args, **kwargs)
        return tracer.call(fn, args, kwargs)

    return wrapper


def is_tracing() -> bool:
    """Whether a function is being compiled (traced) in this thread right now."""
    return _MODE.trace is not None


def is_traced(value: Any) -> bool:
    """Whether ``value`` (a Tensor or an array) is an input or an op's output of a function being
    compiled (`tinygrad_lite.compile`): its values change from call to call, so library code must not
    compute constants from it in Python (it raises `TraceError` instead, or uses an op)."""
    tracer = _MODE.trace
    return tracer is not None and tracer.traced_value(value)


def refuse_traced(value: Any, what: str) -> None:
    """Raise `TraceError` when ``value`` is traced (see `is_traced`): ``what`` says what would be frozen."""
    if is_traced(value):
        raise TraceError(f"{what} is computed in Python from a value of the compiled function, so a replay would "
                         f"reuse the traced value; run this step without tinygrad_lite.compile")


def module_called(module: Any) -> None:
    """Called by ``Module.__call__``: inside a function being compiled, the module's mode and
    attributes become guards of the recorded plan (a replay traces again when they change)."""
    tracer = _MODE.trace
    if tracer is not None:
        tracer.module(module)


def is_grad_enabled() -> bool:
    """True when new ops record the graph (the default)."""
    return _MODE.enabled


class _GradModeContext:
    """Context manager and decorator; on a generator function it applies while the generator runs."""

    _enabled: bool

    def __enter__(self) -> None:
        self._previous = _MODE.enabled
        _MODE.enabled = self._enabled

    def __exit__(self, *exc: object) -> None:
        _MODE.enabled = self._previous

    def __call__(self, fn: Callable) -> Callable:
        mode = type(self)
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def generator(*args: Any, **kwargs: Any) -> Any:
                gen = fn(*args, **kwargs)
                try:
                    with mode():
                        value = gen.send(None)
                    while True:
                        try:
                            sent = yield value
                        except GeneratorExit:
                            with mode():
                                gen.close()
                            raise
                        except BaseException as exc:
                            with mode():
                                value = gen.throw(exc)
                        else:
                            with mode():
                                value = gen.send(sent)
                except StopIteration as stop:  # the wrapped generator finished: pass its return value on
                    return stop.value

            return generator

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with mode():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Ops inside record no graph (inference, parameter updates)."""

    _enabled = False


class enable_grad(_GradModeContext):
    """Turn graph recording back on inside ``no_grad``."""

    _enabled = True


class detect_anomaly:
    """Context manager: raise AnomalyError as soon as an op's output, or the gradient its VJP
    returns, holds NaN or Inf — naming the op and the source line that created it.

    It checks every array every op makes: a debugging aid, not for training speed.
    """

    def __enter__(self) -> detect_anomaly:
        self._previous = _MODE.anomaly
        _MODE.anomaly = True
        return self

    def __exit__(self, *exc: object) -> None:
        _MODE.anomaly = self._previous

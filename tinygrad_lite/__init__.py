"""tinygrad_lite: a small, exact and fast reverse-mode autograd on NumPy."""

# isort: off
from .tensor import (  # first, always: tensor imports the modules its methods call (ops, autograd) at its end
    AnomalyError,
    GraphFreedError,
    Tensor,
    detect_anomaly,
    enable_grad,
    from_numpy,
    is_grad_enabled,
    no_grad,
)

# isort: on
from . import autograd, func, nn, numpy_api, ops, optim
from .autograd import grad
from .einsum import einsum
from .gradcheck import GradcheckError, GradcheckWarning, gradcheck
from .gradgradcheck import gradgradcheck
from .graph import defop
from .ops import (
    absolute,
    add,
    argmax,
    argmin,
    astype,
    broadcast_to,
    clip,
    concatenate,
    div,
    exp,
    expm1,
    log,
    log1p,
    log_softmax,
    logsumexp,
    matmul,
    maximum,
    mean,
    minimum,
    mul,
    neg,
    power,
    relu,
    reshape,
    sigmoid,
    sign,
    softmax,
    sqrt,
    stack,
    sub,
    tanh,
    transpose,
    where,
)
from .ops import max_ as max
from .ops import min_ as min
from .ops import sum_ as sum

__version__ = "0.2.0"


def __getattr__(name: str):
    """``tinygrad_lite.data`` is imported on first use: it brings network and compression modules."""
    if name == "data":
        import importlib

        return importlib.import_module(".data", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "AnomalyError", "GradcheckError", "GradcheckWarning", "GraphFreedError", "Tensor", "absolute", "add",
    "argmax", "argmin", "astype", "autograd", "broadcast_to", "clip", "concatenate", "data", "defop",
    "detect_anomaly", "div", "einsum", "enable_grad", "exp", "expm1", "from_numpy", "func", "grad", "gradcheck",
    "gradgradcheck", "is_grad_enabled", "log", "log1p", "log_softmax", "logsumexp", "matmul", "max", "maximum",
    "mean", "min", "minimum", "mul", "neg", "nn", "no_grad", "numpy_api", "ops", "optim", "power", "relu",
    "reshape", "sigmoid", "sign", "softmax", "sqrt", "stack", "sub", "sum", "tanh", "transpose", "where",
]

"""``np.einsum`` on Tensors: Einstein summation as one op whose VJPs are einsums themselves.

For ``out = einsum("s₀,s₁,…->t", x₀, x₁, …)`` the gradient of operand i contracts the
cotangent with every other operand into operand i's subscripts:

    ∂xᵢ = einsum("t,s₀,…(without sᵢ)…->sᵢ", g, x₀, …)

with two additions that keep that a valid einsum:

* a letter of sᵢ that appears nowhere else was summed over in the forward pass: its
  gradient is broadcast along it, done by a ones vector operand with that letter;
* a letter repeated in sᵢ (``"ii->"``, ``"iij->j"``) reads a diagonal: the gradient is put
  back on that diagonal by renaming each repeat to a fresh letter k and adding the
  identity matrix operand ``"ik"`` (δᵢₖ).

The VJPs call ``np.einsum`` again, so on Tensors (a higher-order gradient) they record this
same op: einsum is differentiable to any order. Size-1 axes broadcast as in NumPy; the
engine sums such gradients back to the operand's shape. Contractions of two or more
operands use NumPy's greedy contraction path (``optimize="greedy"``).
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .graph import defop
from .tensor import Tensor

__all__ = ["einsum", "explicit_subscripts"]

_LETTERS = string.ascii_letters


def _path(n_operands: int) -> str | bool:
    return "greedy" if n_operands >= 2 else False


def explicit_subscripts(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[list[str], str]:
    """The subscripts of each operand and of the output, in explicit form with '...' spelled out.

    Ellipsis axes get unused letters, aligned from the right as broadcasting aligns them;
    implicit mode gives NumPy's output: the ellipsis axes, then the letters used exactly once
    in ASCII order (``"ij,jk"`` → ``"ik"``).
    """
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: subscripts must be a str, got {type(subscripts).__name__}")
    spec = subscripts.replace(" ", "")
    lhs, arrow, out = spec.partition("->")
    if "->" in out or any(c not in _LETTERS and c not in ".,->" for c in spec):
        raise ValueError(f"einsum: invalid subscripts {subscripts!r} (letters, ',', '...' and one '->')")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s), got {len(shapes)}")
    extra = []  # the number of axes '...' stands for, per operand
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        named = len(term.replace("...", ""))
        if term.count(".") not in (0, 3) or (term.count(".") == 3 and "..." not in term):
            raise ValueError(f"einsum: operand {i}'s subscripts {term!r} have a '.' outside one '...'")
        if ("..." in term and named > len(shape)) or ("..." not in term and named != len(shape)):
            raise ValueError(f"einsum: operand {i} has {len(shape)} dimension(s) but its subscripts {term!r} "
                             f"name {named}")
        extra.append(len(shape) - named if "..." in term else 0)
    used = set(spec)
    ellipsis = "".join([c for c in _LETTERS if c not in used][: max(extra, default=0)])
    explicit = [t.replace("...", ellipsis[len(ellipsis) - k:]) for t, k in zip(terms, extra)]
    if arrow:
        if "..." not in out and ellipsis:
            raise ValueError(f"einsum: subscripts {subscripts!r}: the output needs '...' for the broadcast axes")
        out = out.replace("...", ellipsis)
        missing = set(out) - set("".join(explicit))
        if missing or len(set(out)) != len(out):
            raise ValueError(f"einsum: output subscripts {out!r} repeat a letter or use one no operand has")
    else:
        counts = Counter("".join(terms).replace(".", ""))
        out = ellipsis + "".join(sorted(c for c, n in counts.items() if n == 1))
    return explicit, out


def _unused_letters(taken: str) -> Iterator[str]:
    return iter([c for c in _LETTERS if c not in set(taken)])


def _operand_vjp(i: int, terms: list[str], out: str, operands: tuple, result: Any) -> Callable:
    """g ↦ ∂out/∂operand i contracted with g: an einsum of g and the other operands into terms[i]."""
    term, shape, dtype = terms[i], operands[i].shape, result.dtype
    fresh = _unused_letters("".join(terms) + out)
    target, constants, constant_terms = [], [], []
    for axis, c in enumerate(term):
        if c in target:  # a diagonal: δ(c, k) puts the gradient back on it
            k = next(fresh)
            constants.append(np.eye(shape[axis], dtype=dtype))
            constant_terms.append(c + k)
            c = k
        target.append(c)
    others = [j for j in range(len(terms)) if j != i]
    sizes: dict[str, int] = dict(zip(out, result.shape))  # the largest size of each letter the VJP sees
    for j in others:
        for c, n in zip(terms[j], operands[j].shape):
            sizes[c] = max(n, sizes.get(c, 0))
    for c, n in zip(term, shape):
        if sizes.get(c, 1) < n or c not in sizes and c not in "".join(constant_terms):
            # summed over in the forward pass, or seen only broadcast from size 1: spread g along it
            constants.append(np.ones(n, dtype=dtype))
            constant_terms.append(c)
            sizes[c] = n
    spec = ",".join([out, *(terms[j] for j in others), *constant_terms]) + "->" + "".join(target)
    rest = [operands[j] for j in others]
    path = _path(1 + len(rest) + len(constants))

    def vjp(g):
        return np.einsum(spec, g, *rest, *constants, optimize=path)

    return vjp


@defop(name="einsum", fresh_grads=True)
def _einsum(*operands, subscripts=""):
    """einsum(subscripts, *operands);  ∂xᵢ = einsum of g with the other operands into xᵢ's subscripts."""
    terms, out = explicit_subscripts(subscripts, [np.shape(x) for x in operands])
    arrays = [x if isinstance(x, (np.ndarray, Tensor)) else np.asarray(x) for x in operands]
    result = np.einsum(",".join(terms) + "->" + out, *arrays, optimize=_path(len(arrays)))
    return result, tuple(_operand_vjp(i, terms, out, tuple(arrays), result) for i in range(len(arrays)))


def _from_interleaved(args: tuple) -> tuple[str, tuple]:
    """NumPy's other form, ``einsum(a, [0, 1], b, [1, 2], [0, 2])``, as (subscripts, operands)."""
    pairs, out = (args[:-1], args[-1]) if len(args) % 2 else (args, None)
    operands, lists = pairs[0::2], pairs[1::2]

    def letters(sub: Any) -> str:
        text = ""
        for s in sub:
            if s is Ellipsis:
                text += "..."
            elif isinstance(s, (int, np.integer)) and 0 <= int(s) < len(_LETTERS):
                text += _LETTERS[int(s)]
            else:
                raise ValueError(f"einsum: subscript {s!r} must be an integer in [0, {len(_LETTERS)}) or Ellipsis")
        return text

    spec = ",".join(letters(s) for s in lists)
    if out is not None:
        spec += "->" + letters(out)
    return spec, tuple(operands)


def einsum(subscripts: str | Any, *operands: Any, optimize: bool | str = True) -> Tensor:
    """Einstein summation, as ``np.einsum`` (implicit or explicit mode, '...', repeated letters,
    or the interleaved form ``einsum(a, [0, 1], b, [1, 2])``), recorded as one op.

    ``optimize`` is accepted for NumPy compatibility; two or more operands are always
    contracted along NumPy's greedy path.
    """
    if not isinstance(subscripts, str):
        subscripts, operands = _from_interleaved((subscripts, *operands))
    if not operands:
        raise ValueError("einsum: need at least one operand")
    return _einsum(*operands, subscripts=subscripts)

"""Helpers shared by the state-dict loaders of modules, optimizers and schedulers."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["key_problems"]


def key_problems(expected: Iterable[str], given: Iterable[str]) -> list[str]:
    """``["missing keys [...]", "unexpected keys [...]"]`` for the keys of a state dict against
    the keys it should have (each entry only when non-empty; ``[]`` when they match)."""
    expected, given = list(expected), list(given)
    want, have = set(expected), set(given)
    missing = [k for k in expected if k not in have]
    extra = [k for k in given if k not in want]
    return ([f"missing keys {missing}"] if missing else []) + ([f"unexpected keys {extra}"] if extra else [])

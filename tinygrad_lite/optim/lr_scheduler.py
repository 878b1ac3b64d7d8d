"""Learning-rate schedulers with PyTorch's semantics (``torch.optim.lr_scheduler``).

A scheduler writes ``param_groups[i]["lr"]`` of its optimizer (so ``opt.lr`` follows): once when built (epoch 0),
then at each ``step()``, called after ``optimizer.step()`` once per epoch or per batch. ``last_epoch`` counts the
steps; ``base_lrs`` are the groups' ``initial_lr`` (their lr when the first scheduler was built). As in PyTorch,
``step()`` uses the recursive ("chainable") form, which updates the current lr, so schedulers compose by
``ChainedScheduler``; alone, each equals the closed form in its docstring. ``state_dict()`` holds JSON-able values.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import Any

from ..mode import replayed
from ..nn.utils import key_problems
from .optimizer import Optimizer, check_number

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "OneCycleLR",
           "SequentialLR", "ChainedScheduler"]


def _groups(optimizer: Any, where: str) -> list[dict[str, Any]]:
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not all(isinstance(g, dict) and "lr" in g for g in groups):
        raise TypeError(f"{where}: {type(optimizer).__name__} is not an optimizer (no param_groups with an 'lr')")
    return groups


def _count(value: Any, name: str, where: str, low: int = 1) -> int:
    """``value`` as an int >= ``low``, or a ValueError naming it."""
    if isinstance(value, bool) or not hasattr(value, "__index__") or value.__index__() < low:
        raise ValueError(f"{where}: {name} must be an integer >= {low}, got {value!r}")
    return value.__index__()


class LRScheduler:
    """Base class: ``step()`` advances ``last_epoch`` and writes each group's lr from ``get_lr()``.

    Subclasses implement ``get_lr()`` (the recursive form, from the groups' current lr) and ``_closed_form_lr()``
    (from ``base_lrs`` and ``last_epoch``), and list the attributes their ``state_dict`` holds in ``_settings``."""

    _settings: tuple[str, ...] = ()

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        where = type(self).__name__
        groups = _groups(optimizer, where)
        if last_epoch == -1:
            for g in groups:
                g.setdefault("initial_lr", g["lr"])
        else:
            _count(last_epoch, "last_epoch", where, low=0)
            for i, g in enumerate(groups):
                if "initial_lr" not in g:
                    raise KeyError(f"{where}: param_groups[{i}] has no 'initial_lr' to resume at last_epoch="
                                   f"{last_epoch} from (or build with last_epoch=-1 and use load_state_dict)")
        self.optimizer = optimizer
        self.base_lrs: list[float] = [g["initial_lr"] for g in groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count, self._initial = 0, True  # the step made by the constructor
        self.step()
        self._initial = False

    def get_lr(self) -> list[float]:
        """The lr of each group for epoch ``last_epoch`` (recursive form; called by ``step()``)."""
        raise NotImplementedError

    def _closed_form_lr(self) -> list[float]:
        return self.get_lr()

    @replayed
    def step(self) -> None:
        """Move to the next epoch (or batch) and set the groups' learning rates for it."""
        self._step_count += 1
        self.last_epoch += 1
        self._write(self.get_lr())

    def _jump(self, epoch: int) -> None:
        """Go to ``epoch`` directly, by the closed form (how ``SequentialLR`` starts the next scheduler)."""
        self.last_epoch = epoch
        self._write(self._closed_form_lr())

    def _write(self, lrs: list[float]) -> None:
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = lr
        self._last_lr = self._group_lrs()

    def get_last_lr(self) -> list[float]:
        """The learning rate of each group as set by the last ``step()``."""
        return list(self._last_lr)

    def _group_lrs(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """The counters, ``base_lrs``, the last lrs and the settings (JSON-able values)."""
        return {"last_epoch": self.last_epoch, "step_count": self._step_count, "base_lrs": list(self.base_lrs),
                "last_lr": list(self._last_lr), **{k: getattr(self, k) for k in self._settings}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict()`` returned (the optimizer's own state holds its current lrs)."""
        problems = key_problems(self.state_dict(), state)
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        self.last_epoch, self._step_count = int(state["last_epoch"]), int(state["step_count"])
        self.base_lrs, self._last_lr = list(state["base_lrs"]), list(state["last_lr"])
        for k in self._settings:
            setattr(self, k, state[k])


class StepLR(LRScheduler):
    """lr = base_lr · γ^⌊epoch / step_size⌋: decay by ``gamma`` every ``step_size`` epochs."""

    _settings = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size = _count(step_size, "step_size", "StepLR")
        self.gamma = check_number(gamma, "gamma", "StepLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        decay = self.last_epoch != 0 and self.last_epoch % self.step_size == 0
        return [lr * self.gamma for lr in self._group_lrs()] if decay else self._group_lrs()

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr = base_lr · γ^(number of milestones <= epoch): decay by ``gamma`` at each milestone
    (a milestone listed twice decays twice)."""

    _settings = ("milestones", "gamma")

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.milestones = sorted(_count(m, "milestones", "MultiStepLR", low=0) for m in milestones)
        self.gamma = check_number(gamma, "gamma", "MultiStepLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        hits = self.milestones.count(self.last_epoch)
        return [lr * self.gamma**hits for lr in self._group_lrs()] if hits else self._group_lrs()

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** bisect_right(self.milestones, self.last_epoch) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = base_lr · γ^epoch."""

    _settings = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = check_number(gamma, "gamma", "ExponentialLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return self._group_lrs() if self._initial else [lr * self.gamma for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = η_min + (base_lr − η_min) · (1 + cos(π · epoch / T_max)) / 2 (SGDR without restarts:
    past ``T_max`` the cosine goes on, back up towards base_lr). A step scales lr − η_min by the
    ratio of consecutive values, as PyTorch does."""

    _settings = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max = _count(T_max, "T_max", "CosineAnnealingLR")
        self.eta_min = check_number(eta_min, "eta_min", "CosineAnnealingLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, T, low = self.last_epoch, self.T_max, self.eta_min
        if self._initial:
            return self._group_lrs()
        if self._step_count == 1 and t > 0:
            return self._closed_form_lr()
        if (t - 1 - T) % (2 * T) == 0:  # leaving the minimum: the ratio below would be 0/0
            return [lr + (base - low) * (1 - math.cos(math.pi / T)) / 2
                    for base, lr in zip(self.base_lrs, self._group_lrs())]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - low) + low for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class LinearLR(LRScheduler):
    """lr = base_lr · (s + (e − s) · min(epoch, total_iters) / total_iters), s = ``start_factor``,
    e = ``end_factor``: a linear warm-up (or decay) over ``total_iters`` epochs, then constant."""

    _settings = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        self.start_factor = check_number(start_factor, "start_factor", "LinearLR", 0.0, 1.0)
        if self.start_factor == 0.0:
            raise ValueError("LinearLR: start_factor must be in (0.0, 1.0], got 0.0")
        self.end_factor = check_number(end_factor, "end_factor", "LinearLR", 0.0, 1.0)
        self.total_iters = _count(total_iters, "total_iters", "LinearLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        s, e, n, t = self.start_factor, self.end_factor, self.total_iters, self.last_epoch
        if t == 0:
            return [lr * s for lr in self._group_lrs()]
        if self._initial or t > n:
            return self._group_lrs()
        factor = 1.0 + (e - s) / (n * s + (t - 1) * (e - s))  # f(t) / f(t − 1)
        return [lr * factor for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        s, e, n = self.start_factor, self.end_factor, self.total_iters
        return [base * (s + (e - s) * min(n, self.last_epoch) / n) for base in self.base_lrs]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin), stepped once per batch for ``total_steps`` steps.

    The lr anneals from initial = max_lr / ``div_factor`` up to ``max_lr`` over the first
    ``pct_start · total_steps − 1`` steps, then down to min = initial / ``final_div_factor`` at
    step ``total_steps − 1`` (``three_phase``: back to initial at ``2 · pct_start · total_steps − 2``,
    then to min). Annealing from a to b at fraction f of a phase: "cos" gives
    b + (a − b)(1 + cos πf)/2, "linear" a + (b − a) f. With ``cycle_momentum`` the momentum
    (SGD's ``momentum``, Adam's β₁) moves the opposite way between ``max_momentum`` and
    ``base_momentum``; it is shared by all groups, so these are single numbers here.
    """

    _settings = ("total_steps", "pct_start", "anneal_strategy", "three_phase", "max_lrs", "min_lrs",
                 "cycle_momentum", "base_momentum", "max_momentum")

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1) -> None:
        where = "OneCycleLR"
        groups = _groups(optimizer, where)
        if total_steps is None and (epochs is None or steps_per_epoch is None):
            raise ValueError(f"{where}: give total_steps, or epochs and steps_per_epoch")
        self.total_steps = (_count(total_steps, "total_steps", where) if total_steps is not None else
                            _count(epochs, "epochs", where) * _count(steps_per_epoch, "steps_per_epoch", where))
        self.pct_start = check_number(pct_start, "pct_start", where, 0.0, 1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{where}: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy, self.three_phase = anneal_strategy, bool(three_phase)
        ends = [end for end, *_ in self._phases()]
        if any(b == a for a, b in zip([0.0, *ends], ends)):
            raise ValueError(f"{where}: pct_start={pct_start} and total_steps={self.total_steps} give a phase of "
                             f"zero steps; change pct_start")
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        if len(max_lrs) != len(groups):
            raise ValueError(f"{where}: max_lr has {len(max_lrs)} values for {len(groups)} parameter groups")
        self.max_lrs = [check_number(v, "max_lr", where) for v in max_lrs]
        div = check_number(div_factor, "div_factor", where)
        self.min_lrs = [m / div / check_number(final_div_factor, "final_div_factor", where) for m in self.max_lrs]
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum = check_number(base_momentum, "base_momentum", where, 0.0, 1.0, high_open=True)
        self.max_momentum = check_number(max_momentum, "max_momentum", where, 0.0, 1.0, high_open=True)
        if self.cycle_momentum and not (hasattr(optimizer, "beta1") or getattr(optimizer, "momentum", 0.0)):
            raise ValueError(f"{where}: cycle_momentum=True needs an optimizer with momentum or betas (SGD with "
                             f"momentum > 0, Adam); {type(optimizer).__name__} has none: pass cycle_momentum=False")
        if last_epoch == -1:
            for g, m, low in zip(groups, self.max_lrs, self.min_lrs):
                g.update(initial_lr=m / div, max_lr=m, min_lr=low)
        super().__init__(optimizer, last_epoch)

    def _phases(self) -> list[tuple[float, str, str]]:
        """(end step, lr at the start, lr at the end) of each phase, the lrs by name."""
        n, pct = self.total_steps, self.pct_start
        if self.three_phase:
            return [(pct * n - 1, "initial", "max"), (2 * pct * n - 2, "max", "initial"), (n - 1, "initial", "min")]
        return [(pct * n - 1, "initial", "max"), (n - 1, "max", "min")]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times, but total_steps is {self.total_steps}")
        phases, begin, k = self._phases(), 0.0, 0
        while step > phases[k][0] and k < len(phases) - 1:
            begin, k = phases[k][0], k + 1
        end, a, b = phases[k]
        pct = (step - begin) / (end - begin)
        lrs = {"initial": self.base_lrs, "max": self.max_lrs, "min": self.min_lrs}
        if self.cycle_momentum:  # momentum is high where the lr is low: max at "initial"/"min", base at "max"
            m = {"initial": self.max_momentum, "max": self.base_momentum, "min": self.max_momentum}
            name = "beta1" if hasattr(self.optimizer, "beta1") else "momentum"  # Adam's β₁ or SGD's μ
            setattr(self.optimizer, name, self._anneal(m[a], m[b], pct))
        return [self._anneal(x, y, pct) for x, y in zip(lrs[a], lrs[b])]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state; the momentum (not in the optimizer's state dict) is set for the restored step."""
        super().load_state_dict(state)
        if self.cycle_momentum:
            self.get_lr()


class _Composite(LRScheduler):
    """What SequentialLR and ChainedScheduler share: schedulers of one optimizer, their states inside ours."""

    def _adopt(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer, where: str) -> None:
        if not schedulers:
            raise ValueError(f"{where}: expects at least one scheduler")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler):
                raise TypeError(f"{where}: schedulers[{i}] is a {type(s).__name__}, not a scheduler")
            if s.optimizer is not optimizer:
                raise ValueError(f"{where}: schedulers[{i}] ({type(s).__name__}) drives another optimizer")
        self._schedulers, self.optimizer = list(schedulers), optimizer

    def state_dict(self) -> dict[str, Any]:
        """The settings, the last lrs and each scheduler's ``state_dict()`` under ``schedulers``."""
        return {**{k: getattr(self, k) for k in self._settings}, "last_lr": list(self._last_lr),
                "schedulers": [s.state_dict() for s in self._schedulers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        problems = key_problems(self.state_dict(), state)
        if not problems and len(state["schedulers"]) != len(self._schedulers):
            problems.append(f"{len(state['schedulers'])} scheduler states for {len(self._schedulers)} schedulers")
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        for s, sub in zip(self._schedulers, state["schedulers"]):
            s.load_state_dict(sub)
        for k in self._settings:
            setattr(self, k, state[k])
        self._last_lr = list(state["last_lr"])


class SequentialLR(_Composite):
    """Runs ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` (restarted at its epoch 0,
    by its closed form) until ``milestones[1]``, and so on. The schedulers must share ``optimizer``."""

    _settings = ("last_epoch", "milestones")

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1) -> None:
        where = "SequentialLR"
        self._adopt(schedulers, optimizer, where)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"{where}: {len(schedulers)} schedulers need {len(schedulers) - 1} milestones, "
                             f"got {len(milestones)}")
        self.milestones = [_count(m, "milestones", where, low=0) for m in milestones]
        if self.milestones != sorted(self.milestones):
            raise ValueError(f"{where}: milestones must be increasing, got {self.milestones}")
        self.last_epoch = last_epoch + 1
        for g in _groups(optimizer, where):  # undo what building the schedulers did ...
            g["lr"] = g["initial_lr"]
        stack = list(self._schedulers)
        while stack:  # (nested ones too)
            s = stack.pop()
            if isinstance(s, _Composite):
                stack += s._schedulers
            else:
                s.last_epoch -= 1
        self._schedulers[0]._initial_step()  # ... and start the first one
        self._last_lr = self._schedulers[0].get_last_lr()

    @replayed
    def step(self) -> None:
        self.last_epoch += 1
        k = bisect_right(self.milestones, self.last_epoch)
        scheduler = self._schedulers[k]
        if k > 0 and self.milestones[k - 1] == self.last_epoch:
            scheduler._jump(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_Composite):
    """Steps every scheduler in ``schedulers`` at each ``step()``, in order: their recursive forms
    compose, e.g. a ``LinearLR`` warm-up times an ``ExponentialLR`` decay."""

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None) -> None:
        if optimizer is None and schedulers:
            optimizer = schedulers[0].optimizer
        self._adopt(schedulers, optimizer, "ChainedScheduler")
        self._last_lr = self._group_lrs()

    @replayed
    def step(self) -> None:
        for s in self._schedulers:
            s.step()
        self._last_lr = self._group_lrs()

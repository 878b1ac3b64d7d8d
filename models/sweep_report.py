"""A sweep's results: the table of the best trials, ``best.toml``, and the plots, from the study alone.

Everything here reads the study (any worker's, on any machine, can write it): ``report.txt``
(counts, the best trials, failures), ``best.toml`` (the best trial's whole config, which
``python -m models.train --config best.toml`` runs as is) and ``history.png`` /
``importance.png`` (Optuna's optimization history and parameter importances).
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from models.config import display
from models.files import atomic_write
from models.study import Sweep

__all__ = ["best_config", "report_text", "write_report", "TOP"]

TOP = 10


def _trials(study: Any, state: str) -> list[Any]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState[state],))


def best_config(study: Any, sweep: Sweep) -> Any:
    """The config of the best complete trial (None when no trial completed)."""
    done = _trials(study, "COMPLETE")
    if not done:
        return None
    best = max(done, key=lambda t: (t.value, -t.number))
    return sweep.config({p.name: p.config_value(best.params[p.name]) for p in sweep.params if p.name in best.params})


def _pct(x: Any) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def report_text(study: Any, sweep: Sweep, where: str) -> str:
    """The report: counts by state, the ``TOP`` best trials (validation and test accuracy, parameters, run
    folder), and why trials failed."""
    trials = study.get_trials(deepcopy=False)
    counts = Counter(t.state.name.lower() for t in trials)
    lines = [f"{where}: {len(trials)} trials (" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ")",
             f"search space: {' '.join(sweep.definition()['space'])}; sampler {sweep.sampler}; objective: "
             f"validation accuracy of the final model ({sweep.base.val_fraction:g} of the training data held out)"]
    done = sorted(_trials(study, "COMPLETE"), key=lambda t: (-t.value, t.number))
    if done:
        names = [p.name for p in sweep.params]
        rows = [["trial", "val acc", "test acc", "seconds", *names, "run folder"]]
        for t in done[:TOP]:
            u = t.user_attrs
            rows.append([str(t.number), _pct(t.value), _pct(u.get("test_accuracy")), f"{u.get('seconds', 0):.1f}",
                         *(_param_text(t.params.get(n)) for n in names),
                         (f"{u['host']}:" if u.get("host") else "") + u.get("run_dir", "?")])
        lines += ["", f"best {min(TOP, len(done))} of {len(done)} complete trials:", *_table(rows)]
    failed = _trials(study, "FAIL")
    if failed:
        retried = {t.system_attrs["retry_history"][-1]: t.number for t in trials if t.system_attrs.get("retry_history")}
        lines += ["", "failed trials:"]
        for t in failed:
            again = f"run again as trial {retried[t.number]}" if t.number in retried else "not queued again"
            lines.append(f"  trial {t.number}: " + (t.user_attrs.get("error") or f"its worker was killed or "
                                                                                 f"interrupted ({again})"))
    return "\n".join(lines) + "\n"


def _param_text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else str(v)


def write_report(study: Any, sweep: Sweep, out: Path, where: str, *, plots: bool = True) -> tuple[str, Path | None]:
    """Write ``report.txt``, ``best.toml`` (when a trial completed) and the plots into ``out``; returns the
    report's text and the path of best.toml."""
    text = report_text(study, sweep, where)
    config = best_config(study, sweep)
    best = None
    if config is not None:
        number = max(_trials(study, "COMPLETE"), key=lambda t: (t.value, -t.number)).number
        body = config.to_toml().split("\n", 1)[1]
        best = atomic_write(out / "best.toml", (f"# the best trial ({number}) of {where}; train it with "
                                                f"python -m models.train --config best.toml\n{body}").encode())
        text += f"\nbest config: {display(best)} (python -m models.train --config {display(best)})\n"
    if plots:
        notes = _plots(study, out)
        if notes:
            text += "\n" + "\n".join(notes) + "\n"
    atomic_write(out / "report.txt", text.encode("utf-8"))
    return text, best


def _plots(study: Any, out: Path) -> list[str]:
    """history.png and importance.png; notes for the ones that could not be drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.exceptions import ExperimentalWarning
        from optuna.importance import PedAnovaImportanceEvaluator
        from optuna.visualization import matplotlib as vis
    except ImportError as e:
        return [f"no plots: {e} (pip install 'tinygrad-lite[sweep]')"]
    notes = []
    complete = len(_trials(study, "COMPLETE"))
    target = "validation accuracy"
    for name, draw, need in (("history.png", lambda s: vis.plot_optimization_history(s, target_name=target), 1),
                             ("importance.png", lambda s: vis.plot_param_importances(
                                 s, evaluator=PedAnovaImportanceEvaluator(), target_name=target), 2)):
        if complete < need:
            notes.append(f"{name}: not drawn (it needs {need} complete trials)")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                warnings.simplefilter("ignore", UserWarning)
                ax = draw(study)
            fig = ax.figure
            fig.set_size_inches(8, 5)
            atomic_write(out / name, lambda f, fig=fig: fig.savefig(f, format="png", dpi=100, bbox_inches="tight"))
            plt.close(fig)
        except (ValueError, RuntimeError, ImportError, ZeroDivisionError) as e:
            notes.append(f"{name}: not drawn ({e})")
    return notes

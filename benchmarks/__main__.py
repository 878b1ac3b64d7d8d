"""``python -m benchmarks``: the benchmark suite (see ``benchmarks/__init__.py``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from . import env
from . import frameworks as fw
from .common import Config
from .sections import DEFAULT, SECTIONS
from .sections.cnn import BATCH
from .sections.step import threads_label, threads_text

OTHERS = [n for n in fw.ORDER if n not in fw.BASELINES]
#: the sections that time a training step once per thread setting (the machine's default, then one thread)
STEP_SECTIONS = ("step", "cnn")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="tinygrad_lite benchmarks: training step, epoch, per-op overhead, memory, gradcheck cost, "
                    "scaling, Hessian-vector product, the CNN's training step (and, on request, a profile of the "
                    "training step).",
    )
    p.add_argument("--quick", action="store_true",
                   help="a short subset of every section (< 20 s); all but the step section with one BLAS thread")
    p.add_argument("--only", default=None, metavar="SECTION[,SECTION]",
                   help=f"run only these sections: {', '.join(SECTIONS)} (profile runs only when named here)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write machine-readable results to PATH")
    p.add_argument("--repeats", type=int, default=None, help="rounds per timing, each figure is their median "
                                                             "(default 11, quick 3)")
    p.add_argument("--min-time", type=float, default=None, help="seconds per timing sample (default 0.03, quick 0.01)")
    p.add_argument("--frameworks", default=",".join(OTHERS),
                   help=f"comparison frameworks to include, comma-separated (the baselines {', '.join(fw.BASELINES)} "
                        f"always run); default {','.join(OTHERS)}")
    p.add_argument("--batches", default=None, metavar="B[,B]",
                   help="batch sizes for step, scaling (batch) and profile, e.g. 64,256")
    p.add_argument("--threads", type=int, default=None,
                   help="limit NumPy's BLAS (threadpoolctl) and torch to this many threads for the whole run "
                        "(default: the machine's default; the step section then runs again with one thread)")
    p.add_argument("--keep-freed-memory", action="store_true",
                   help="opt in to models.allocator.keep_freed_memory() (glibc mallopt, the training CLI's "
                        "allocator setting) for the whole process, so for every framework alike; off by default")
    p.add_argument("--profile-steps", type=int, default=300, help="steps per profile run (section 'profile')")
    args = p.parse_args(argv)
    if args.only:
        names = [s.strip() for s in args.only.split(",") if s.strip()]
        bad = [s for s in names if s not in SECTIONS]
        if bad:
            p.error(f"unknown section(s) {', '.join(bad)}; choose from {', '.join(SECTIONS)}")
        args.sections = names
    else:
        args.sections = list(DEFAULT)
    names = [s.strip() for s in args.frameworks.split(",") if s.strip()]
    bad = [s for s in names if s not in fw.ORDER]
    if bad:
        p.error(f"unknown framework(s) {', '.join(bad)}; choose from {', '.join(fw.ORDER)}")
    args.framework_list = names
    try:
        args.batch_list = [int(b) for b in args.batches.split(",")] if args.batches else None
    except ValueError:
        p.error(f"--batches takes comma-separated integers, got {args.batches!r}")
    if args.batch_list and min(args.batch_list) < 1:
        p.error("--batches must be positive")
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats must be at least 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    return args


def _limit_threads(n: int | None) -> Any:
    """Keep a threadpoolctl limit alive for the whole run (None: leave the BLAS as configured)."""
    if n is None:
        return None
    try:
        return env.limit_threads(n)
    except ImportError:
        sys.exit("--threads needs threadpoolctl (pip install threadpoolctl, or the 'bench' extra)")


def step_thread_plan(requested: int | None, default: int | None) -> tuple[list[int | None], str]:
    """The thread settings of the step section: the requested one, or the default and then one thread."""
    if requested is not None:
        return [requested], ""
    if default == 1:
        return [None], ""
    if default is None:
        return [None], "the one-thread step table needs threadpoolctl (pip install threadpoolctl)"
    return [None, 1], ""


def allocator_setting(opt_in: bool) -> str:
    """The allocator setting of this run: the C library's default unless ``--keep-freed-memory``."""
    if not opt_in:
        return "the C library's default (--keep-freed-memory opts in to the training CLI's setting, for all alike)"
    try:
        from models.allocator import keep_freed_memory
    except ImportError:
        sys.exit("--keep-freed-memory needs models.allocator.keep_freed_memory, which this checkout lacks")
    if not keep_freed_memory():
        return "the C library's default (keep_freed_memory() applies to glibc only)"
    return "keep_freed_memory() for the whole process, every framework alike (--keep-freed-memory)"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    limiter = _limit_threads(args.threads)  # noqa: F841  (kept alive until the end)
    malloc = allocator_setting(args.keep_freed_memory)
    meta = env.metadata()
    meta["malloc"] = malloc
    step_threads, step_note = step_thread_plan(args.threads, meta["blas"].get("threads"))
    # a quick run is a smoke test: off the step section it takes one thread, which a busy machine cannot slow down
    other_threads = 1 if args.quick and len(step_threads) > 1 else None
    cfg = Config(
        quick=args.quick,
        repeats=args.repeats or (3 if args.quick else 11),
        frameworks=args.framework_list,
        min_time=args.min_time or (0.01 if args.quick else 0.03),
        profile_steps=args.profile_steps,
        batches=args.batch_list,
        blas_tag=env.blas_tag(meta["blas"]),
        step_threads=step_threads,
    )
    print("tinygrad_lite benchmarks" + (" (quick)" if args.quick else ""), datetime.now(timezone.utc)
          .strftime("%Y-%m-%d %H:%M UTC"))
    print(env.header(meta))
    print(f"malloc  : {malloc}")
    timed_steps = [s for s in STEP_SECTIONS if s in args.sections]
    if timed_steps:
        print(f"threads : {' and '.join(timed_steps)} section{'s' if len(timed_steps) > 1 else ''} with "
              + " and then ".join("the BLAS's default threads" if n is None else threads_text(n)
                                  for n in step_threads)
            + (f" ({step_note})" if step_note else "")
            + (f"; the other sections with {threads_text(other_threads)} (--quick)" if other_threads else ""))
    load, threads = (meta["machine"].get("load_average") or [0.0])[0], meta["blas"].get("threads")
    if threads and threads > 1 and load > 0.5:
        print(f"warning: the machine is busy (load {load:.2f}) and the BLAS runs {threads} threads; on a shared "
              f"machine a multi-threaded BLAS can be many times slower on these small matrices: try --threads 1")
    if threads and threads > 1 and "torch" in cfg.runnable() and any(
            s in args.sections for s in ("step", "epoch", "overhead", "cnn")):
        print(f"note: torch (OpenMP) and NumPy's OpenBLAS each run {threads} threads in this one process, and their "
              f"thread pools compete for the cores (torch ran 3-4x slower so here); compare with --threads 1")
    missing = [n for n in cfg.wanted() if not fw.installed(n)]
    if missing:
        print(f"not installed: {', '.join(missing)} (pip install -e '.[bench]')")
    out: dict[str, Any] = {
        "schema": 1, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": args.quick,
        "repeats": cfg.repeats, "min_time": cfg.min_time, "threads_limit": args.threads,
        "step_threads": [threads_label(n) for n in step_threads], "other_threads": threads_label(other_threads),
        "meta": meta,
        "sections": {},
    }
    start = time.perf_counter()
    for name in args.sections:
        t0 = time.perf_counter()
        with env.limit_threads(other_threads if name not in STEP_SECTIONS else None):
            result = SECTIONS[name](dataclasses.replace(cfg, blas_tag=env.blas_tag()))
        seconds = time.perf_counter() - t0
        print()
        for table in result.tables:
            print(table.render())
            print()
        if result.text:
            print(result.text)
            print()
        print(f"({name}: {seconds:.1f} s)")
        out["sections"][name] = {"seconds": seconds, "tables": [t.to_dict() for t in result.tables],
                                 "raw": result.raw, "text": result.text}
    out["seconds"] = time.perf_counter() - start
    print(f"\ntotal {out['seconds']:.1f} s")
    mismatches = [f"{b} ({setting})" for setting, runs in out["sections"].get("step", {}).get("raw", {}).items()
                  for b, r in runs.items() if not r["sanity"]["ok"]]
    mismatches += [f"{BATCH} (cnn, {setting})" for setting, r in out["sections"].get("cnn", {}).get("raw", {}).items()
                   if not r["sanity"]["ok"]]
    if mismatches:
        print(f"SANITY MISMATCH: the frameworks disagree on the first step at batch {', '.join(mismatches)}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=1, default=_jsonable)
            fh.write("\n")
        print(f"wrote {args.json}")
    return 1 if mismatches else 0


def _jsonable(value: Any) -> Any:
    """NumPy scalars and arrays, and anything else, in a JSON-friendly form."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())

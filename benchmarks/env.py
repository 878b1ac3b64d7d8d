"""What a benchmark ran on: the machine, library versions, and the BLAS kernel and thread count.

The BLAS report comes from ``threadpoolctl`` (the ``bench`` extra); without it we fall back
to NumPy's build configuration and say that the kernel and thread count are unknown.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import platform
import sys
from typing import Any

import numpy as np

#: environment variables that change which BLAS kernel or how many threads run
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

#: optional frameworks we compare against: display name -> (import name, distribution name)
FRAMEWORKS = {"torch": ("torch", "torch"), "autograd": ("autograd", "autograd"), "mygrad": ("mygrad", "mygrad"),
              "jax-jit": ("jax", "jax")}


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """CPU, core count, OS and Python of this run."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def version(dist: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def available(name: str) -> bool:
    """Whether an optional framework (a key of FRAMEWORKS) can be imported."""
    module = FRAMEWORKS[name][0]
    try:
        importlib.import_module(module)
    except Exception:  # ImportError, or a broken install
        return False
    return True


def versions() -> dict[str, str | None]:
    """Versions of NumPy, tinygrad_lite, threadpoolctl and the optional frameworks (None: not installed)."""
    import tinygrad_lite

    out: dict[str, str | None] = {"numpy": np.__version__, "tinygrad_lite": tinygrad_lite.__version__}
    for name, (_, dist) in FRAMEWORKS.items():
        out[name] = version(dist)
    out["threadpoolctl"] = version("threadpoolctl")
    return out


def blas() -> dict[str, Any]:
    """The BLAS NumPy uses: library, version, kernel (architecture) and thread count.

    Also the BLAS-related environment variables as set for this process.
    """
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure the BLAS library is loaded
    info: dict[str, Any] = {"env": {k: os.environ.get(k) for k in BLAS_ENV}}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        config = getattr(np, "__config__", None)
        name = None
        try:
            name = config.CONFIG["Build Dependencies"]["blas"]["name"]  # type: ignore[union-attr]
        except Exception:
            pass
        info.update(library=name or "unknown", version=None, kernel="unknown (install threadpoolctl)",
                    threads=None, source="numpy build config")
        return info
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    numpy_pools = [p for p in pools if "numpy" in p.get("filepath", "")] or pools
    if not numpy_pools:
        info.update(library="unknown", version=None, kernel="unknown", threads=None, source="threadpoolctl")
        return info
    p = numpy_pools[0]
    info.update(library=p.get("internal_api"), version=p.get("version"), kernel=p.get("architecture") or "unknown",
                threads=p.get("num_threads"), threading_layer=p.get("threading_layer"),
                filepath=p.get("filepath"), source="threadpoolctl")
    return info


def blas_threads() -> int | None:
    """NumPy's BLAS thread count right now (threadpoolctl), or None if unknown."""
    return blas().get("threads")


def blas_tag(info: dict[str, Any] | None = None) -> str:
    """The short tag printed next to every table: ``BLAS: openblas SkylakeX, 2 threads``."""
    info = info or blas()
    threads = info.get("threads")
    t = f"{threads} thread{'s' if threads != 1 else ''}" if threads is not None else "threads unknown"
    return f"BLAS: {info.get('library')} {info.get('kernel')}, {t}"


def header(meta: dict[str, Any]) -> str:
    """The block printed once at the top: machine, versions, BLAS and its environment."""
    m, v, b = meta["machine"], meta["versions"], meta["blas"]
    lines = [
        f"machine : {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['os']}, "
        f"{m['implementation']} {m['python']}"
        + (f", load average {m['load_average'][0]:.2f} at start" if m.get("load_average") else ""),
        "versions: " + ", ".join(f"{k} {val or 'not installed'}" for k, val in v.items()),
        f"BLAS    : {b.get('library')} {b.get('version') or ''} kernel={b.get('kernel')} "
        f"threads={b.get('threads')} ({b.get('source')})",
        "BLAS env: " + (", ".join(f"{k}={val}" for k, val in b["env"].items() if val is not None) or "none set"),
    ]
    return "\n".join(lines)


def metadata() -> dict[str, Any]:
    """Everything ``header`` prints, as a dict (the ``meta`` of the JSON output)."""
    return {"machine": machine(), "versions": versions(), "blas": blas(), "argv": sys.argv[1:]}


def limit_threads(n: int | None) -> Any:
    """A threadpoolctl limit of NumPy's BLAS to ``n`` threads, to use as a context or keep alive.

    None leaves the BLAS as configured (a context that does nothing). Raises ImportError
    without threadpoolctl. Torch follows: ``frameworks.import_torch`` matches its thread
    count to the BLAS's whenever a torch contender is built.
    """
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")

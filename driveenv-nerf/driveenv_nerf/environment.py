"""What a run's numbers depend on besides the code and the seed: the machine's float rounding (docs/results.md, "Why:
the seed-0 agents are chaotic in float rounding"). train.py writes environment() to each run's environment.json;
benchmarks/agent_numerics.py prints it.

Only the standard library at import time, and no package-relative imports, so agent_numerics.py can load this file
by path while it imports an older checkout's package (--src)."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

ROUNDING_ENV_VARS = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS")


def cpu_model() -> str:
    """/proc/cpuinfo's first "model name" (Linux), else platform.processor(), else "unknown"."""
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit(src: str | Path) -> str | None:
    """HEAD of the git tree holding src, with "+dirty" when tracked files under src differ from it; None outside git."""
    try:
        def git(*a):
            return subprocess.run(["git", "-C", str(src), *a], capture_output=True, text=True, timeout=10, check=True).stdout
        head = git("rev-parse", "HEAD").strip()
        return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no", "--", ".").strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(src: str | Path | None = None) -> dict:
    """JSON-serialisable record of versions, threads, kernel sets, CPU / GPU model, the rounding-related environment
    variables that are set, and the source tree's git commit (src: default this package's project folder)."""
    import numpy as np
    import torch

    src = Path(src) if src is not None else Path(__file__).resolve().parents[1]
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl": torch.backends.mkl.is_available(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "env": {k: os.environ[k] for k in ROUNDING_ENV_VARS if k in os.environ},
        "source": str(src),
        "git_commit": git_commit(src),
    }

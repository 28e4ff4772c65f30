"""Check run_official_toy.py's checkpoint/resume: a short run split in three commands must end with the same
parameters and the same measured outputs, bit for bit, as the same run in one command (needs torch and the
official toy/ folder, as run_official_toy.py; not part of `make test`, whose virtualenv has no torch).

The split run stops once at a fixed step inside the warm-up (--stop-at-step), once by the clock somewhere after
it (--stop-after-minutes, so the time limit's own path is what gets checked), and is resumed with periodic
checkpoints on (which must not change anything). Exit code 0 when everything is equal, 1 otherwise.

    PY benchmarks/official_toy/check_resume.py --toy-dir TOY [--steps 1300]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_official_toy.py")


def run(*extra, code=0):
    r = subprocess.run([sys.executable, RUN, *extra], capture_output=True, text=True)
    print(r.stdout.strip())
    if r.returncode != code:
        sys.exit(f"exit code {r.returncode}, expected {code}:\n{r.stderr}")
    return r.stdout


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--toy-dir", required=True)
    p.add_argument("--steps", type=int, default=1300, help="total steps (1,000 of them warm-up)")
    p.add_argument("--stop-at-step", type=int, default=600, help="first split, a step number")
    p.add_argument("--stop-after-minutes", type=float, default=0.1, help="second split, by the clock")
    p.add_argument("--seed", type=int, default=2)
    a = p.parse_args()
    d = tempfile.mkdtemp()
    common = ["--toy-dir", a.toy_dir, "--seed", str(a.seed), "--steps", str(a.steps)]
    run(*common, "--checkpoint-every", "0", "--out", f"{d}/whole.npz", "--save-policy", f"{d}/whole.pt")
    split = [*common, "--out", f"{d}/split.npz", "--checkpoint", f"{d}/split_ckpt.pt"]
    run(*split, "--checkpoint-every", "0", "--stop-at-step", str(a.stop_at_step), code=3)
    out = run(*split, "--checkpoint-every", "0", "--resume", "--stop-after-minutes", str(a.stop_after_minutes),
              code=3)
    second = int(out.split("stopped before step ")[1].split()[0])
    run(*split, "--checkpoint-every", "100", "--resume", "--save-policy", f"{d}/split.pt")
    whole, split_sd = torch.load(f"{d}/whole.pt"), torch.load(f"{d}/split.pt")
    bad = [k for k in whole if not torch.equal(whole[k], split_sd[k])]
    zw, zs = np.load(f"{d}/whole.npz"), np.load(f"{d}/split.npz")
    bad += [k for k in zw.files if not np.array_equal(zw[k], zs[k])]
    print(f"split at steps {a.stop_at_step} and {second} of {a.steps} (warm-up 1000): "
          f"{len(whole)} parameter tensors and {len(zw.files)} measured arrays compared; "
          + ("all bit-equal" if not bad else f"DIFFER: {bad}"))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

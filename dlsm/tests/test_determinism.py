"""Reproducibility: two separate invocations of the same tiny train.py run (different Python hash
seeds) write bit-identical checkpoints, samples and results. Catches unseeded RNGs, salted str
hashes used as seeds, and order-dependent reductions on the CPU backend."""
import json
import os
import subprocess
import sys

import numpy as np

from test_train import TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(out_dir, hash_seed):
    env = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
    subprocess.run([sys.executable, "train.py", *TINY, "--out-dir", str(out_dir)], cwd=ROOT, env=env,
                   check=True, capture_output=True, text=True)
    (run_dir,) = [os.path.join(out_dir, d) for d in os.listdir(out_dir)]
    return run_dir


def test_tiny_run_is_bit_identical_across_invocations(tmp_path):
    a, b = _run(tmp_path / "a", 1), _run(tmp_path / "b", 2)
    for f in sorted(os.listdir(a)):
        if f.startswith("ckpt_"):
            with open(os.path.join(a, f), "rb") as fa, open(os.path.join(b, f), "rb") as fb:
                assert fa.read() == fb.read(), f"{f} differs between two identical runs"
    sa, sb = np.load(os.path.join(a, "samples.npz")), np.load(os.path.join(b, "samples.npz"))
    assert sa.files == sb.files
    for k in sa.files:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    with open(os.path.join(a, "results.json")) as fa, open(os.path.join(b, "results.json")) as fb:
        assert json.load(fa) == json.load(fb)  # floats round-trip exactly through json

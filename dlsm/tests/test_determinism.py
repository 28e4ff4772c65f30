"""Reproducibility: the tiny train.py run, repeated in a separate process with a different Python
hash seed, writes bit-identical checkpoints, samples and results. Catches unseeded RNGs, salted str
hashes used as seeds, and order-dependent reductions on the CPU backend. (The second process finds
the first one's executables in the session's compilation cache, see conftest.py: a seed or hash
that changed a traced program would miss the cache and compile anew; XLA's own compile
determinism is not what this tests.)"""
import json
import os
import subprocess
import sys

import numpy as np

from conftest import ROOT, TINY

# train.py's own entry point, after printing this process's hash of a probe string
CHILD = "import sys, train; print('HASH', hash('dlsm-probe')); train.main(train.parse(sys.argv[1:]))"


def test_tiny_run_is_bit_identical_across_processes(tiny_toy_run, tmp_path):
    _, a, _ = tiny_toy_run
    parent_seed = os.environ.get("PYTHONHASHSEED", "random")
    child_seed = "0" if not parent_seed.isdigit() else str(int(parent_seed) + 1)  # 0: no salt; the parent is salted
    env = dict(os.environ, PYTHONHASHSEED=child_seed)
    r = subprocess.run([sys.executable, "-c", CHILD, *TINY, "--out-dir", str(tmp_path)], cwd=ROOT, env=env,
                       check=True, capture_output=True, text=True)
    child_hash = int(r.stdout.split("HASH ")[1].split()[0])
    assert child_hash != hash("dlsm-probe"), "both processes hash strings alike: the test would prove nothing"
    (b,) = [os.path.join(tmp_path, d) for d in os.listdir(tmp_path)]
    ckpts = sorted(f for f in os.listdir(a) if f.startswith("ckpt_"))
    assert len(ckpts) == 3 and ckpts == sorted(f for f in os.listdir(b) if f.startswith("ckpt_"))
    for f in ckpts:
        with open(os.path.join(a, f), "rb") as fa, open(os.path.join(b, f), "rb") as fb:
            assert fa.read() == fb.read(), f"{f} differs between two identical runs"
    sa, sb = np.load(os.path.join(a, "samples.npz")), np.load(os.path.join(b, "samples.npz"))
    assert sa.files == sb.files
    for k in sa.files:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    with open(os.path.join(a, "results.json")) as fa, open(os.path.join(b, "results.json")) as fb:
        assert json.load(fa) == json.load(fb)  # floats round-trip exactly through json

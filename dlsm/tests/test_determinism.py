"""Reproducibility: the tiny train.py run, repeated in a separate process with a different Python
hash seed, writes bit-identical checkpoints, samples and results. Catches unseeded RNGs, salted str
hashes used as seeds, and order-dependent reductions on the CPU backend. (The second process,
conftest.py's tiny_toy_rerun, finds the first one's executables in the session's compilation cache:
a seed or hash that changed a traced program would miss the cache and compile anew; XLA's own
compile determinism is not what this tests.)"""
import json
import os

import numpy as np


def test_tiny_run_is_bit_identical_across_processes(tiny_toy_run, tiny_toy_rerun):
    _, a, _ = tiny_toy_run
    out, b = tiny_toy_rerun
    child_hash = int(out.split("HASH ")[1].split()[0])
    assert child_hash != hash("dlsm-probe"), "both processes hash strings alike: the test would prove nothing"
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

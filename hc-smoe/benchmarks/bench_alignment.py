"""Cost of M-SMoE's exact permutation alignment (weight matching, `hcsmoe.merging.weight_matching_permutation`)
vs the expert width d_ff, and its extrapolation to Mixtral-8x7B (d_ff = 14336, hidden 4096).

For each d_ff, two random experts (Gaussian weights, hidden size --hidden) give the similarity matrix the code
builds (`_neuron_vectors(ex, 0) @ _neuron_vectors(ex, 1).T`: d_ff x d_ff inner products of the neurons' [gate row, up row, down column],
float64, a torch matmul on all threads), then the code's exact assignment (`_assignment`: scipy's
linear_sum_assignment on a negated copy, -sim, one thread). Up to --variants-up-to, the same matrix also goes through
two other exact paths, each checked to return the same permutation (--repeats interleaved runs of all three, the
minimum time of each reported; above --variants-up-to, one run of the code's path):

    maximize  : linear_sum_assignment(sim, maximize=True)        (what the code used before; scipy negates a copy)
    float32   : linear_sum_assignment(sim.astype(float32), maximize=True)

The assignment time is fitted as t = c * d_ff^b (least squares in log-log) and extrapolated to --target (14336);
an M-SMoE layer of Mixtral aligns at most 7 experts to expert 0, and Mixtral has 32 MoE layers.

    python benchmarks/bench_alignment.py                                  # d_ff = 1024, 2048, 4096
    python benchmarks/bench_alignment.py --sizes 1024 2048 4096 8192      # adds 8192 (tens of seconds more)
    python benchmarks/bench_alignment.py --kind permuted-copy             # experts = noisy permuted copies
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from hcsmoe.merging import _assignment, _neuron_vectors  # noqa: E402  (the two halves of weight_matching_permutation)


def random_experts(d_ff: int, hidden: int, kind: str, noise: float, seed: int = 0) -> SimpleNamespace:
    """Two experts in transformers 5.x's fused layout: gate_up_proj (2, 2 d_ff, d), down_proj (2, d, d_ff).
    kind 'permuted-copy': expert 1 = expert 0 with shuffled neurons plus Gaussian noise (std `noise` x weight std),
    as for experts sparse-upcycled from one dense FFN that have drifted apart."""
    g = torch.Generator().manual_seed(seed)
    gu = torch.randn(2, 2 * d_ff, hidden, generator=g) * hidden ** -0.5
    dn = torch.randn(2, hidden, d_ff, generator=g) * d_ff ** -0.5
    if kind == "permuted-copy":
        p = torch.randperm(d_ff, generator=g)
        gu[1] = torch.cat([gu[0, :d_ff][p], gu[0, d_ff:][p]]) + noise * gu[1]
        dn[1] = dn[0][:, p] + noise * dn[1]
    return SimpleNamespace(gate_up_proj=gu, down_proj=dn)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def perm_of(row, col, n):
    perm = np.empty(n, dtype=np.int64)
    perm[row] = col
    return perm


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096], help="d_ff values")
    p.add_argument("--hidden", type=int, default=4096, help="hidden size d (Mixtral: 4096)")
    p.add_argument("--kind", default="random", choices=["random", "permuted-copy"])
    p.add_argument("--noise", type=float, default=1.0, help="permuted-copy: noise std relative to the weights'")
    p.add_argument("--variants-up-to", type=int, default=4096, help="largest d_ff at which the variants also run")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the three paths (d_ff <= --variants-up-to)")
    p.add_argument("--target", type=int, default=14336, help="d_ff to extrapolate to (Mixtral-8x7B)")
    p.add_argument("--alignments-per-layer", type=int, default=7)
    p.add_argument("--layers", type=int, default=32)
    a = p.parse_args(argv)

    print(f"weight matching on two {a.kind} experts, hidden {a.hidden}; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), scipy {__import__('scipy').__version__}, {os.cpu_count()} CPU cores\n")
    print("| d_ff | similarity matmul s | assignment s (code: float64, negated copy) | maximize=True s | float32 s | "
          "same permutation | neurons moved |")
    print("|---|---|---|---|---|---|---|")
    sizes, t_lsap, t_sim = [], [], []
    for n in a.sizes:
        ex = random_experts(n, a.hidden, a.kind, a.noise)
        sim, ts = timed(lambda: _neuron_vectors(ex, 0) @ _neuron_vectors(ex, 1).T)   # = weight_matching_permutation's matrix
        del ex
        perm, tl = timed(lambda: _assignment(sim))
        cells = ["-", "-", "-"]
        if n <= a.variants_up_to:      # interleaved repeats; the minimum of each path is reported
            s = sim.numpy()
            times = {"code": [tl], "maximize": [], "float32": []}
            same = True
            for _ in range(a.repeats):
                for name, fn in (("maximize", lambda: linear_sum_assignment(s, maximize=True)),
                                 ("float32", lambda: linear_sum_assignment(s.astype(np.float32), maximize=True)),
                                 ("code", lambda: _assignment(sim))):
                    res, t = timed(fn)
                    times[name].append(t)
                    p_ = res.numpy() if name == "code" else perm_of(*res, n)
                    same &= bool(np.array_equal(perm.numpy(), p_))
            tl = min(times["code"])
            cells = [f"{min(times['maximize']):.2f}", f"{min(times['float32']):.2f}", "yes" if same else "NO"]
        moved = int((perm != torch.arange(n)).sum())
        print(f"| {n} | {ts:.2f} | {tl:.2f} | {cells[0]} | {cells[1]} | {cells[2]} | {moved} |", flush=True)
        sizes.append(n); t_lsap.append(tl); t_sim.append(ts)
        del sim

    if len(sizes) >= 2:
        # assignment: empirical exponent (the shortest-augmenting-path solver has no fixed flop count);
        # similarity: a (d_ff x 3d) @ (3d x d_ff) matmul, exactly d_ff^2 x 6d flops, so scaled quadratically
        b, logc = np.polyfit(np.log(sizes), np.log(t_lsap), 1)
        est = np.exp(logc) * a.target ** b
        b2 = np.log(t_lsap[-1] / t_lsap[-2]) / np.log(sizes[-1] / sizes[-2])
        est2 = t_lsap[-1] * (a.target / sizes[-1]) ** b2
        est_sim = t_sim[-1] * (a.target / sizes[-1]) ** 2
        gflops = sizes[-1] ** 2 * 6 * a.hidden / t_sim[-1] / 1e9
        n_align = a.layers * a.alignments_per_layer
        print(f"\nfit over d_ff = {sizes}: assignment t ~ d_ff^{b:.2f} (two largest sizes alone: d_ff^{b2:.2f}); "
              f"similarity matmul at d_ff = {sizes[-1]}: {gflops:.0f} GFLOP/s float64")
        print(f"EXTRAPOLATED to d_ff = {a.target} (not measured): assignment {est:.0f} s (two-largest exponent: {est2:.0f} s), "
              f"similarity matmul {est_sim:.0f} s (d_ff^2 from the largest size) per alignment")
        print(f"  up to {a.alignments_per_layer} alignments per layer x {a.layers} layers = {n_align} alignments: "
              f"assignments {n_align * est / 3600:.1f} h (one CPU thread), similarity matmuls {n_align * est_sim / 3600:.1f} h "
              f"on this CPU, together {n_align * (est + est_sim) / 3600:.1f} h ({a.alignments_per_layer * (est + est_sim) / 60:.1f} min per layer)")

if __name__ == "__main__":
    main()

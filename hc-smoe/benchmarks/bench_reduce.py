"""Wall time and peak memory of HC-SMoE's stages vs model size and number of experts, and the
clustering cost for E up to 256.

    python benchmarks/bench_reduce.py            # quick: a few tiny Mixtral sizes (CPU, ~1-2 minutes)
    python benchmarks/bench_reduce.py --full     # larger sizes

Each model size runs in its own subprocess so its peak RSS (os.wait4 -> ru_maxrss) is its own.
Prints markdown tables; the README quotes them.
"""
from __future__ import annotations

import argparse
import json
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):   # stable timings on a shared machine
    os.environ.setdefault(_v, "1")
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def one_model(hidden: int, experts: int, layers: int, tokens: int) -> dict:
    import torch

    from hcsmoe.calibration import collect_stats
    from hcsmoe.checkpoint import count_parameters
    from hcsmoe.clustering import hierarchical_cluster
    from hcsmoe.families import moe_blocks
    from hcsmoe.merging import merge_experts
    from hcsmoe.toy import build_tiny

    torch.set_num_threads(1)
    model = build_tiny("mixtral", hidden=hidden, ffn=2 * hidden, layers=layers, heads=4, kv_heads=2,
                       experts=experts, top_k=2)
    seq = 128
    batches = list(torch.randint(0, 256, (tokens // seq, seq)).split(4))
    t = time.perf_counter()
    stats = collect_stats(model, batches, progress=False)
    t_cal = time.perf_counter() - t
    k = experts // 2
    t_clu = t_mer = 0.0
    for i, block in moe_blocks(model):
        t = time.perf_counter()
        labels = hierarchical_cluster(stats[i].expert_output_mean.numpy(), k, "average")
        t_clu += time.perf_counter() - t
        t = time.perf_counter()
        block.experts = merge_experts(block.experts, labels, stats[i].freq.numpy(), "freq")
        t_mer += time.perf_counter() - t
    return {"params": count_parameters(model)["params"], "calibration_s": t_cal, "clustering_s": t_clu, "merge_s": t_mer}


def clustering_sweep(es, dim: int) -> list[dict]:
    import numpy as np
    from scipy.cluster.hierarchy import linkage

    from hcsmoe.clustering import LINKAGES, hierarchical_cluster, kmeans

    rows = []
    for e in es:
        x = np.random.default_rng(0).normal(size=(e, dim))
        row = {"E": e}
        for method in LINKAGES:
            t = time.perf_counter(); hierarchical_cluster(x, e // 2, method); row[method] = time.perf_counter() - t
        t = time.perf_counter(); kmeans(x, e // 2, restarts=1); row["kmeans"] = time.perf_counter() - t
        t = time.perf_counter(); linkage(x, "average"); row["scipy average"] = time.perf_counter() - t
        rows.append(row)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="larger models and token counts")
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(one_model(**json.loads(a.child))))
        return
    sizes = [(64, 8), (128, 8), (128, 32), (256, 64)]
    if a.full:
        sizes += [(512, 8), (512, 64), (1024, 64)]
    tokens = 4096 if a.full else 1024
    print(f"## calibration / clustering / merging, tiny 2-layer Mixtral, {tokens} calibration tokens, E -> E/2, 1 CPU thread\n")
    print("| hidden | E | params | calibration s | clustering s | merging s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for hidden, e in sizes:
        spec = json.dumps({"hidden": hidden, "experts": e, "layers": 2, "tokens": tokens})
        proc = subprocess.Popen([sys.executable, __file__, "--child", spec], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            print(f"| {hidden} | {e} | failed (exit status {status}) | | | | |")
            continue
        r = json.loads(out.decode().strip().splitlines()[-1])
        print(f"| {hidden} | {e} | {r['params']:,} | {r['calibration_s']:.2f} | {r['clustering_s']:.4f} | "
              f"{r['merge_s']:.4f} | {usage.ru_maxrss / 1024:.0f} |", flush=True)
    es = [8, 16, 32, 60, 64, 128, 256]
    dim = 4096
    print(f"\n## clustering cost alone: E random features of dimension {dim} (Mixtral's hidden size), k = E/2, seconds\n")
    rows = clustering_sweep(es, dim)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) if k == "E" else f"{r[k]:.4f}" for k in keys) + " |")


if __name__ == "__main__":
    main()

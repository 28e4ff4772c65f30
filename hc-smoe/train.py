"""HC-SMoE main job: build (or load) an MoE LM, reduce its experts E -> k with HC-SMoE and every
baseline, and print / write the results table.

    python train.py                          # embedded CPU default: tiny sparse-upcycled Mixtral, 8 -> 4, 3 seeds
    python train.py --config paper-qwen-45   # Qwen1.5-MoE-A2.7B-Chat 60 -> 45 on a GPU (see README)
    python train.py --help                   # every option

Per seed: (toy only) train a dense model, sparse-upcycle it into an MoE and train that; evaluate the
original; calibrate once (layer by layer); then for each method reduce a fresh copy and evaluate
perplexity and multiple-choice accuracy on held-out text. Output: runs/<config>-<time>/.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import json
import os
import sys
import time

import numpy as np
import torch

from hcsmoe.calibration import collect_stats
from hcsmoe.checkpoint import count_parameters, save_reduced
from hcsmoe.clustering import LINKAGES
from hcsmoe.config import Config, parse_args
from hcsmoe.data import (c4_blocks, contiguous_blocks, encode, load_corpus, multiple_choice_items,
                         random_blocks)
from hcsmoe.evaluation import lm_eval_zero_shot, multiple_choice_accuracy, perplexity
from hcsmoe.merging import MERGES
from hcsmoe.methods import CLUSTERINGS, FEATURES, LAYER_BUDGETS, METHODS, ReduceConfig, reduce_model
from hcsmoe.toy import build_dense, sparse_upcycle, train_lm

FIELDS = ["seed", "method", "ppl", "acc", "acc_norm", "params", "expert_params", "param_bytes", "reduce_s"]


def method_config(spec: str, cfg: Config, seed: int) -> ReduceConfig:
    """'hc-smoe:single:fix-dom' -> ReduceConfig; options are linkage / clustering / merge / feature / layer-budget
    names. cfg.linkage / feature / merge are hc-smoe's defaults; m-smoe defaults to M-SMoE's own merge and budget."""
    name, *opts = spec.split(":")
    if name not in METHODS:
        raise SystemExit(f"unknown method {name!r} in {spec!r}; choose from {METHODS}")
    rc = ReduceConfig(method=name, num_experts=cfg.target_experts, linkage=cfg.linkage, feature=cfg.feature,
                      merge=cfg.merge if name == "hc-smoe" else "", seed=seed, max_combos=cfg.max_combos,
                      device="cuda" if cfg.device == "auto" else cfg.device)
    for o in opts:
        field = ("linkage" if o in LINKAGES else "clustering" if o in CLUSTERINGS else "merge" if o in MERGES
                 else "feature" if o in FEATURES else "layer_budget" if o in LAYER_BUDGETS else None)
        if field is None:
            raise SystemExit(f"unknown option {o!r} in {spec!r}")
        setattr(rc, field, o)
    rc.validate()
    return rc


def toy_model(cfg: Config, seed: int, run_dir: str, train_ids: np.ndarray, log: list):
    """Sparse upcycling: dense stage, copy the FFN into every expert (+noise), MoE stage. Cached for --resume."""
    from transformers import AutoModelForCausalLM

    path = os.path.join(run_dir, f"seed{seed}", "moe")
    for p in (path, os.path.join(cfg.init_from, f"seed{seed}", "moe") if cfg.init_from else ""):
        if p and os.path.exists(os.path.join(p, "config.json")):
            return AutoModelForCausalLM.from_pretrained(p).eval()
    kw = dict(hidden=cfg.hidden, ffn=cfg.ffn, layers=cfg.layers, heads=cfg.heads, kv_heads=cfg.kv_heads,
              experts=cfg.experts, top_k=cfg.top_k, max_len=max(cfg.seq_len, cfg.calib_seq_len, 512))
    dense = build_dense(cfg.family, seed=seed, **kw)
    train_lm(dense, train_ids, cfg.dense_steps, cfg.batch_size, cfg.seq_len, cfg.lr, seed,
             desc=f"seed {seed} dense", log=log, progress=cfg.progress)
    moe = sparse_upcycle(dense, cfg.experts, cfg.top_k, cfg.upcycle_noise, seed=seed)
    train_lm(moe, train_ids, cfg.moe_steps, cfg.batch_size, cfg.seq_len, cfg.lr, seed + 1000,
             desc=f"seed {seed} moe", log=log, progress=cfg.progress)
    moe.save_pretrained(path)
    return moe


def evaluate(model, cfg: Config, eval_blocks, items, encode_fn, tokenizer=None) -> dict:
    out = {"ppl": perplexity(model, eval_blocks), **multiple_choice_accuracy(model, items, encode_fn)}
    if cfg.lm_eval and tokenizer is not None:
        out.update({f"lm_eval/{k}": v for k, v in lm_eval_zero_shot(model, tokenizer).items()})
    return out


def summarise(rows: list[dict]) -> list[dict]:
    table = []
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        line = {"method": method, "seeds": len(rs)}
        for key in ("ppl", "acc", "acc_norm"):
            v = np.array([float(r[key]) for r in rs])
            line[key] = (v.mean(), v.std())          # population std over seeds (numpy's default ddof=0)
        line["expert_params"] = int(float(rs[0]["expert_params"]))
        line["params"] = int(float(rs[0]["params"]))
        table.append(line)
    return table


def format_table(table: list[dict], cfg: Config) -> str:
    head = ("| method | val ppl (lower better) | MC acc | MC acc_norm | expert params | total params |\n"
            "|---|---|---|---|---|---|")
    lines = [head]
    for t in table:
        lines.append(f"| {t['method']} | {t['ppl'][0]:.3f} +- {t['ppl'][1]:.3f} | {t['acc'][0]:.3f} +- {t['acc'][1]:.3f} "
                     f"| {t['acc_norm'][0]:.3f} +- {t['acc_norm'][1]:.3f} | {t['expert_params']:,} | {t['params']:,} |")
    return "\n".join(lines)


def plot(rows: list[dict], log: list, run_dir: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if log:
        fig, ax = plt.subplots(figsize=(7, 4))
        for stage in dict.fromkeys(r["stage"] for r in log):
            ls = [r["loss"] for r in log if r["stage"] == stage]
            ax.plot(np.convolve(ls, np.ones(10) / 10, mode="valid"), label=stage)
        ax.set_xlabel("step"); ax.set_ylabel("train loss (nats/byte)"); ax.legend(fontsize=7); ax.set_title("sparse upcycling")
        fig.tight_layout(); fig.savefig(os.path.join(run_dir, "training_loss.png"), dpi=120); plt.close(fig)
    table = summarise(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    names = [t["method"] for t in table]
    for ax, key, label in [(axes[0], "ppl", "held-out perplexity"), (axes[1], "acc", "multiple-choice acc")]:
        ax.bar(range(len(table)), [t[key][0] for t in table], yerr=[t[key][1] for t in table], capsize=3)
        ax.set_xticks(range(len(table))); ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8); ax.set_title(label)
    axes[0].set_ylim(bottom=min(t["ppl"][0] for t in table) * 0.9)
    fig.tight_layout(); fig.savefig(os.path.join(run_dir, "methods.png"), dpi=120); plt.close(fig)


def main(argv=None) -> list[dict]:
    cfg = parse_args(argv, description=__doc__.split("\n\n")[0])
    if not cfg.model and not 1 <= cfg.target_experts <= cfg.experts:   # fail before training the toy models
        raise SystemExit(f"--target-experts {cfg.target_experts} must satisfy 1 <= k <= --experts {cfg.experts}")
    for spec in cfg.methods:
        method_config(spec, cfg, 0)                                       # an unknown method or option fails now too
    torch.set_num_threads(cfg.threads)
    run_dir = cfg.resume or os.path.join(cfg.out_dir, f"{cfg.config}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(dataclasses.asdict(cfg), f, indent=1)
    metrics_path = os.path.join(run_dir, "metrics.csv")
    rows = list(csv.DictReader(open(metrics_path))) if os.path.exists(metrics_path) else []
    done = {(int(r["seed"]), r["method"]) for r in rows}
    log: list = []
    train_text, test_text, source = load_corpus()
    t0 = time.time()

    tokenizer = None
    if cfg.model:   # a real checkpoint: offline it must already be in the local HF cache
        from transformers import AutoModelForCausalLM, AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(cfg.model)
        encode_fn = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]
        placement = {"device_map": "auto"} if cfg.device == "auto" else {}     # multi-GPU via accelerate
        load = lambda: AutoModelForCausalLM.from_pretrained(cfg.model, dtype=getattr(torch, cfg.dtype), **placement).eval()
    else:
        encode_fn = encode
    test_ids = np.asarray(encode_fn(test_text), dtype=np.int64)
    eval_blocks = contiguous_blocks(test_ids, cfg.seq_len if not cfg.model else cfg.calib_seq_len, cfg.eval_blocks)

    for seed in cfg.seeds:
        rng = np.random.default_rng(seed)
        items = multiple_choice_items(test_text, cfg.mc_items, np.random.default_rng(10_000 + seed))
        if cfg.model:
            original = load()
        else:
            original = toy_model(cfg, seed, run_dir, encode(train_text), log)
        todo = [m for m in ("original", *cfg.methods) if (seed, m) not in done]
        if not todo:
            continue
        if cfg.calib_source == "c4":
            calib = c4_blocks(tokenizer, cfg.calib_blocks, cfg.calib_seq_len, seed)
        else:
            calib = random_blocks(np.asarray(encode_fn(train_text[: 4_000_000]), dtype=np.int64),
                                  cfg.calib_blocks, cfg.calib_seq_len, rng)
        t = time.time()
        stats = collect_stats(original, list(calib.split(max(1, 8 * 128 // cfg.calib_seq_len))), device=cfg.device,
                              max_stored_tokens=cfg.max_stored_tokens, progress=cfg.progress)
        calib_s = time.time() - t
        for spec in todo:
            if spec == "original":
                model, reduce_s = original, 0.0
            else:
                model = copy.deepcopy(original) if not cfg.model else load()
                t = time.time()
                reduce_model(model, stats, method_config(spec, cfg, seed))
                reduce_s = time.time() - t
                if cfg.save_merged and seed == cfg.seeds[0] and spec == "hc-smoe":
                    save_reduced(model, os.path.join(run_dir, f"merged-hc-smoe-seed{seed}"),
                                 extra={"method": spec, "source_model": cfg.model or "toy"})
            if cfg.model and cfg.device not in ("cpu", "auto"):
                model.to(cfg.device)
            row = {"seed": seed, "method": spec, **evaluate(model, cfg, eval_blocks, items, encode_fn, tokenizer),
                   **count_parameters(model), "reduce_s": round(reduce_s, 3)}
            if cfg.model and cfg.device not in ("cpu", "auto"):
                model.to("cpu")
            rows.append({k: row.get(k) for k in FIELDS} | {k: v for k, v in row.items() if k not in FIELDS})
            new = not os.path.exists(metrics_path)
            with open(metrics_path, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
                if new:
                    w.writeheader()
                w.writerow(row)
            print(f"seed {seed} {spec:18s} ppl {row['ppl']:.3f} acc {row['acc']:.3f} acc_norm {row['acc_norm']:.3f} "
                  f"(calibration {calib_s:.1f}s, reduce {reduce_s:.2f}s)", flush=True)
    if log:
        with open(os.path.join(run_dir, "train_log.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["stage", "step", "loss"])
            w.writeheader(); w.writerows(log)
    table = summarise(rows)
    text = (f"HC-SMoE results: {cfg.config}, {cfg.experts if not cfg.model else 'E'} -> {cfg.target_experts} experts/layer, "
            f"seeds {list(cfg.seeds)} (mean +- std, ddof=0), corpus {source}, {time.time() - t0:.0f}s\n\n" + format_table(table, cfg))
    print("\n" + text)
    with open(os.path.join(run_dir, "results.md"), "w") as f:
        f.write(text + "\n")
    plot(rows, log, run_dir)
    print(f"\nwrote {run_dir}/ (config.json, metrics.csv, results.md, *.png)")
    return table


if __name__ == "__main__":
    main(sys.argv[1:])

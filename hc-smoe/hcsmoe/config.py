"""Typed run configuration, named configs (configs/<name>.json) and a dataclass -> argparse CLI."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


@dataclass
class Config:
    config: str = "quick"              # named config in configs/ (quick = the embedded CPU default)
    seeds: tuple = (0, 1, 2)           # each seed: its own toy model, calibration sample and random baselines
    model: str = ""                    # empty: build + train a tiny sparse-upcycled MoE; else a hub id / local path
    family: str = "mixtral"            # tiny model family: mixtral | qwen2_moe | qwen3_moe | olmoe
    hidden: int = 64
    ffn: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    experts: int = 8
    top_k: int = 2
    seq_len: int = 128
    dense_steps: int = 250             # sparse upcycling, stage 1: dense model
    moe_steps: int = 250               # stage 2: MoE initialised with E copies of the dense FFN
    batch_size: int = 16
    lr: float = 3e-3
    upcycle_noise: float = 0.01
    # --- calibration (paper: 32 blocks x 2048 tokens of C4, seed 42)
    calib_blocks: int = 32
    calib_seq_len: int = 128
    calib_source: str = "local"        # local (KJV train split) | c4 (needs `datasets` + internet)
    max_stored_tokens: int = 2048      # MoE inputs kept per layer for O-prune / fix-dom
    # --- reduction
    target_experts: int = 4            # k experts kept per layer (E -> k)
    methods: tuple = ("hc-smoe", "hc-smoe:single", "hc-smoe:kmeans", "hc-smoe:fix-dom",
                      "o-prune", "f-prune", "s-prune", "m-smoe", "random")
    linkage: str = "average"           # default options of hc-smoe; "method:opt:opt" overrides per method
    feature: str = "expert-output"
    merge: str = "freq"
    max_combos: int = 100000
    # --- evaluation
    eval_blocks: int = 100             # held-out blocks of seq_len tokens for perplexity
    mc_items: int = 250                # held-out multiple-choice items (true continuation vs 3 distractors)
    lm_eval: bool = False              # real models only: the paper's 8 zero-shot tasks via lm-eval (needs [full])
    # --- system
    device: str = "cpu"                # where each layer runs in calibration: cpu | cuda | auto (device_map="auto", multi-GPU)
    dtype: str = "float32"             # model dtype for real models (bfloat16 on GPU)
    threads: int = 1                   # torch CPU threads (1 is fastest on a busy shared machine)
    out_dir: str = "runs"
    resume: str = ""                   # a previous run directory: reuse its trained models and finished rows
    init_from: str = ""                # a previous run directory: reuse its trained toy models (e.g. to try another k)
    save_merged: bool = True           # save the first seed's hc-smoe model (reduced, loadable) in the run dir
    progress: bool = True


def load_named(name: str) -> dict:
    path = os.path.join(CONFIG_DIR, f"{name}.json")
    if not os.path.exists(path):
        names = sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith(".json"))
        raise SystemExit(f"unknown config {name!r}; available: {names}")
    with open(path) as f:
        return json.load(f)


def _parse_bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {s}")


def _field_comments() -> dict:
    import inspect
    import re

    out = {}
    for line in inspect.getsource(Config).splitlines():
        m = re.match(r"\s+(\w+): .*?#\s*(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).replace("%", "%%")
    return out


def parse_args(argv=None, description: str = "") -> Config:
    """Defaults < configs/<--config>.json < command-line flags."""
    parser = argparse.ArgumentParser(description=description)
    comments = _field_comments()
    for f in dataclasses.fields(Config):
        doc = comments.get(f.name, "")
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("tuple", tuple):
            elem = type(f.default[0]) if f.default else str
            parser.add_argument(flag, nargs="+", type=elem, default=None, help=f"{doc} (default: {' '.join(map(str, f.default))})")
        elif f.type in ("bool", bool):
            parser.add_argument(flag, type=_parse_bool, default=None, help=f"{doc} (default: {f.default})")
        else:
            typ = {"int": int, "float": float, "str": str}.get(f.type, f.type)
            parser.add_argument(flag, type=typ, default=None, help=f"{doc} (default: {f.default!r})")
    args = parser.parse_args(argv)
    values = dataclasses.asdict(Config())
    values.update(load_named(args.config or "quick"))
    values.update({k: v for k, v in vars(args).items() if v is not None})
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return Config(**values)

"""HC-SMoE on a GPU: layer-by-layer calibration on the GPU (`merge.py --device cuda`) and the accelerate
offload path (`--device auto`: part of the model on the GPU, part in CPU RAM, part on disk) give the
same expert groups and the same reduced model; wall time and peak GPU memory of each. Where the two
reduced checkpoints differ, it lists the tensors that differ and checks that evaluating one of them twice
gives the same logits (so that a difference is located in the weights, not in the evaluation).

No pretrained MoE can be downloaded, so the source model is a randomly initialised transformers MoE
(Mixtral or Qwen3-MoE class) saved to disk first: the groups are meaningless as a compression result,
but the code path, its determinism across placements, and its cost are what is measured.

    python benchmarks/gpu_offload.py                         # GPU: ~0.8B-parameter Mixtral-class model, bf16
    python benchmarks/gpu_offload.py --family qwen3_moe --experts 64 --layers 8
    python benchmarks/gpu_offload.py --small                 # CPU smoke run (what the tests already cover)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default="mixtral", choices=["mixtral", "qwen2_moe", "qwen3_moe", "olmoe"])
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--ffn", type=int, default=2048)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--experts", type=int, default=16)
    p.add_argument("--keep", type=int, default=0, help="experts kept per layer (default: half)")
    p.add_argument("--calib-blocks", type=int, default=16)
    p.add_argument("--calib-seq-len", type=int, default=2048)
    p.add_argument("--small", action="store_true", help="tiny sizes, CPU (smoke run)")
    p.add_argument("--workdir", default="", help="where the source / reduced checkpoints go (default: a temp dir)")
    a = p.parse_args(argv)
    if a.small:
        a.hidden, a.ffn, a.layers, a.experts, a.calib_blocks, a.calib_seq_len = 64, 128, 3, 8, 2, 64
    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    dtype = "bfloat16" if cuda else "float32"

    import merge
    from hcsmoe.toy import build_tiny

    work = a.workdir or tempfile.mkdtemp(prefix="hcsmoe-gpu-")
    src = os.path.join(work, "source")
    t = time.time()
    model = build_tiny(a.family, hidden=a.hidden, ffn=a.ffn, layers=a.layers, heads=8 if a.hidden >= 512 else 4,
                       kv_heads=2, experts=a.experts, top_k=2, max_len=max(512, a.calib_seq_len))
    model.to(getattr(torch, dtype)).save_pretrained(src)
    nparam = sum(x.numel() for x in model.parameters())
    model_bytes = sum(x.numel() * x.element_size() for x in model.parameters())
    del model
    print(f"source: {a.family}, {nparam / 1e6:.0f}M parameters ({gib(model_bytes)} {dtype}), {a.layers} layers x "
          f"{a.experts} experts; built and saved in {time.time() - t:.1f} s", flush=True)
    calib = os.path.join(work, "calib.txt")
    with open(calib, "w") as f:   # bytes tokenizer: any text; a deterministic pseudo-corpus
        g = torch.Generator().manual_seed(0)
        f.write(" ".join("".join(chr(97 + int(c)) for c in torch.randint(0, 26, (int(n),), generator=g))
                         for n in torch.randint(1, 10, (a.calib_blocks * a.calib_seq_len // 4,), generator=g)))

    keep = a.keep or a.experts // 2
    common = ["--model", src, "--tokenizer", "bytes", "--experts", str(keep), "--calib-source", calib,
              "--calib-blocks", str(a.calib_blocks), "--calib-seq-len", str(a.calib_seq_len), "--dtype", dtype]
    third = f"{max(1, model_bytes // 3 // 2**20)}MiB"
    runs = {
        f"{dev} (layer by layer)": ["--device", dev],
        f"auto: {dev} {third} + cpu {third} + disk": ["--device", "auto", "--max-memory",
                                                      json.dumps({("0" if cuda else "cpu"): third, **({"cpu": third} if cuda else {})}),
                                                      "--offload-folder", os.path.join(work, "offload")],
    }
    out = {}
    for name, extra in runs.items():
        d = os.path.join(work, f"out{len(out)}")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t = time.time()
        rep = merge.main(common + extra + ["--out", d])
        wall = time.time() - t
        peak = torch.cuda.max_memory_allocated() if cuda else float("nan")
        groups = json.load(open(os.path.join(d, "hcsmoe.json")))["groups"]
        out[name] = (d, groups, rep, wall, peak)
        print(f"RUN {name}: wall {wall:.1f} s (calibration {rep['calibration_s']} s, reduce {rep['reduce_s']} s), "
              f"peak GPU memory {gib(peak) if cuda else 'n/a'}, params {rep['params_before'] / 1e6:.0f}M -> "
              f"{rep['params_after'] / 1e6:.0f}M, on disk {gib(rep['bytes_before_on_disk'])} -> {gib(rep['bytes_after_on_disk'])}",
              flush=True)

    (da, ga, *_), (db, gb, *_) = out.values()
    same = sum(ga[k] == gb[k] for k in ga)
    print(f"expert groups identical in {same}/{len(ga)} layers")
    from safetensors.torch import load_file

    from hcsmoe.checkpoint import load_reduced

    ta, tb = [{k: v for f in sorted(os.listdir(x)) if f.endswith(".safetensors")
               for k, v in load_file(os.path.join(x, f)).items()} for x in (da, db)]
    differ = [k for k in ta if not torch.equal(ta[k], tb[k])]
    print(f"checkpoint tensors differing: {len(differ)} of {len(ta)}; non-expert ones among them: "
          f"{[k for k in differ if '.experts.' not in k] or 'none'}")
    for k in differ:
        print(f"  {k}: {int((ta[k] != tb[k]).sum())} of {ta[k].numel()} entries differ, max |a - b| "
              f"{(ta[k].float() - tb[k].float()).abs().max().item():.3g}")
    ids = torch.randint(0, 256, (2, 128), generator=torch.Generator().manual_seed(1)).to(dev)
    with torch.no_grad():
        ma = load_reduced(da, dtype=getattr(torch, dtype)).to(dev).eval()
        la, la2 = ma(input_ids=ids).logits.float(), ma(input_ids=ids).logits.float()
        del ma
        lb = load_reduced(db, dtype=getattr(torch, dtype)).to(dev).eval()(input_ids=ids).logits.float()
    print(f"the same reduced model evaluated twice: bit-identical {bool(torch.equal(la, la2))}")
    print(f"reduced models' logits: max |a - b| = {(la - lb).abs().max().item():.3g} (bit-identical: {bool(torch.equal(la, lb))})")
    print(f"device: {torch.cuda.get_device_name() if cuda else 'cpu'}, torch {torch.__version__}, "
          f"transformers {__import__('transformers').__version__}, {os.cpu_count()} CPU cores")
    return 0 if same == len(ga) else 1


if __name__ == "__main__":
    sys.exit(main())

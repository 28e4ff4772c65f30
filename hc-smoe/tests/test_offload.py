"""The large-model path: a model placed by accelerate's device_map with layers offloaded to disk is calibrated and
reduced layer by layer and gives exactly what the in-memory path gives (on this CPU-only machine the execution
device of every layer is the CPU; the GPU placement is the same code with execution device cuda)."""
import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from hcsmoe.calibration import collect_stats
from hcsmoe.checkpoint import save_reduced
from hcsmoe.families import moe_blocks
from hcsmoe.methods import ReduceConfig, reduce_model
from hcsmoe.offload import is_offloaded, module_tensor
from hcsmoe.toy import build_tiny

pytest.importorskip("accelerate")

DISK_MAP = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk",
            "model.layers.2": "disk", "model.norm": "cpu", "lm_head": "cpu"}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("src")
    build_tiny("qwen2_moe", seed=4, layers=3).save_pretrained(path)
    return path


@pytest.mark.parametrize("placement,method,dtype", [
    ("explicit-disk", "hc-smoe", torch.float32), ("max-memory", "hc-smoe", torch.float32),
    ("explicit-disk", "o-prune", torch.float32), ("max-memory", "o-prune", torch.float32),
    ("explicit-disk", "hc-smoe", torch.bfloat16), ("max-memory", "o-prune", torch.bfloat16)])
def test_offloaded_model_reduces_exactly_like_the_in_memory_one(source, ids, tmp_path, placement, method, dtype):
    ref = AutoModelForCausalLM.from_pretrained(source, dtype=dtype).eval()
    kw = ({"device_map": DISK_MAP} if placement == "explicit-disk"
          else {"device_map": "auto", "max_memory": {"cpu": 400_000 if dtype == torch.float32 else 200_000}})
    off = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, offload_folder=str(tmp_path / "offload"), **kw).eval()
    offloaded = [is_offloaded(layer) for layer in off.model.layers]
    assert sum(offloaded) >= 2                                                 # the test really offloads
    layer = off.model.layers[offloaded.index(True)]
    assert layer.mlp.experts.gate_up_proj.device.type == "meta"
    torch.testing.assert_close(module_tensor(layer, "mlp.experts.gate_up_proj"),
                               ref.model.layers[offloaded.index(True)].mlp.experts.gate_up_proj.detach(), rtol=0, atol=0)

    stats_ref = collect_stats(ref, [ids, ids.flip(1)], progress=False)
    stats_off = collect_stats(off, [ids, ids.flip(1)], device="auto", progress=False)
    for i in stats_ref:
        for field in ("expert_output_mean", "freq", "prob_sum", "router_logits", "inputs"):
            torch.testing.assert_close(getattr(stats_off[i], field), getattr(stats_ref[i], field), rtol=0, atol=0)

    cfg = ReduceConfig(method=method, num_experts=4, max_combos=30)
    want = copy.deepcopy(ref)
    info_ref = reduce_model(want, stats_ref, cfg)
    info_off = reduce_model(off, stats_off, cfg)
    assert info_off == info_ref
    assert not any(is_offloaded(layer) for layer in off.model.layers)        # reduced layers are loaded for good
    for (_, a), (_, b) in zip(moe_blocks(want), moe_blocks(off)):              # the merged (or kept) weights, bit for bit
        assert a.experts.gate_up_proj.dtype == dtype
        torch.testing.assert_close(b.experts.gate_up_proj, a.experts.gate_up_proj, rtol=0, atol=0)
        torch.testing.assert_close(b.experts.down_proj, a.experts.down_proj, rtol=0, atol=0)
    logits = want(input_ids=ids).logits
    torch.testing.assert_close(off(input_ids=ids).logits, logits, rtol=0, atol=0)

    layout = save_reduced(off, str(tmp_path / "reduced"))
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "reduced", dtype=dtype,
                                                  trust_remote_code=layout == "remote").eval()
    torch.testing.assert_close(loaded(input_ids=ids).logits, logits, rtol=0, atol=0)


def test_meta_tensor_without_an_offload_hook_is_an_error():
    with torch.device("meta"):
        model = build_tiny("mixtral")
    with pytest.raises(RuntimeError, match="meta device"):
        module_tensor(model.model.layers[0], "mlp.gate.weight")


def test_merge_py_with_device_auto_and_disk_offload_equals_the_cpu_run(source, tmp_path):
    import json

    import merge

    common = ["--model", str(source), "--tokenizer", "bytes", "--experts", "3", "--calib-blocks", "2",
              "--calib-seq-len", "32", "--dtype", "float32"]
    a = merge.main(common + ["--out", str(tmp_path / "a"), "--device", "cpu"])
    b = merge.main(common + ["--out", str(tmp_path / "b"), "--device", "auto", "--max-memory", '{"cpu": 400000}',
                             "--offload-folder", str(tmp_path / "offload")])
    groups = [json.load(open(tmp_path / d / "hcsmoe.json"))["groups"] for d in ("a", "b")]
    assert groups[0] == groups[1]
    assert a["bytes_after_on_disk"] == b["bytes_after_on_disk"] < a["bytes_before_on_disk"]
    ids = torch.randint(0, 256, (1, 16), generator=torch.Generator().manual_seed(1))
    la, lb = [AutoModelForCausalLM.from_pretrained(tmp_path / d, trust_remote_code=True).eval()(input_ids=ids).logits
              for d in ("a", "b")]
    torch.testing.assert_close(la, lb, rtol=0, atol=0)

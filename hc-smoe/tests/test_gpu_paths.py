"""On a CUDA machine: `collect_stats(..., device="cuda")` on a model in CPU RAM (layer by layer) and the accelerate
placement (`device_map` with layers on the GPU, in CPU RAM and on disk, `device="auto"`) compute the same thing, in
bf16, bit for bit: the same calibration statistics, the same merged weights, the same reduced model. Skipped on
machines without a GPU (the CPU versions of these checks are tests/test_offload.py)."""
import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from hcsmoe.calibration import collect_stats
from hcsmoe.families import moe_blocks
from hcsmoe.methods import ReduceConfig, reduce_model
from hcsmoe.offload import is_offloaded
from hcsmoe.toy import build_tiny

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_cuda_layer_by_layer_and_accelerate_offload_give_bit_identical_reduced_models(tmp_path):
    pytest.importorskip("accelerate")
    src = tmp_path / "src"
    build_tiny("mixtral", seed=1, hidden=128, ffn=256, layers=3, experts=8, max_len=512).to(torch.bfloat16).save_pretrained(src)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 256, (1, 512), generator=g) for _ in range(4)]
    ids = torch.randint(0, 256, (2, 64), generator=g).cuda()

    ram = AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16).eval()            # in CPU RAM
    dmap = {"model.embed_tokens": 0, "model.rotary_emb": 0, "model.norm": 0, "lm_head": 0,
            "model.layers.0": 0, "model.layers.1": "cpu", "model.layers.2": "disk"}
    placed = AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16, device_map=dmap,
                                                  offload_folder=str(tmp_path / "offload")).eval()
    assert [is_offloaded(layer) for layer in placed.model.layers] == [False, True, True]

    stats_ram = collect_stats(ram, batches, device="cuda", progress=False)
    stats_placed = collect_stats(placed, batches, device="auto", progress=False)
    for i in stats_ram:
        for field in ("freq", "prob_sum", "router_logits", "expert_output_mean", "inputs"):
            torch.testing.assert_close(getattr(stats_placed[i], field), getattr(stats_ram[i], field), rtol=0, atol=0)

    cfg = ReduceConfig(method="hc-smoe", num_experts=4, device="cuda")
    reduced = copy.deepcopy(ram)
    assert reduce_model(reduced, stats_ram, cfg) == reduce_model(placed, stats_placed, cfg)
    for (_, a), (_, b) in zip(moe_blocks(reduced), moe_blocks(placed)):
        torch.testing.assert_close(b.experts.gate_up_proj.cpu(), a.experts.gate_up_proj, rtol=0, atol=0)
        torch.testing.assert_close(b.experts.down_proj.cpu(), a.experts.down_proj, rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(placed(input_ids=ids).logits, reduced.cuda()(input_ids=ids).logits, rtol=0, atol=0)

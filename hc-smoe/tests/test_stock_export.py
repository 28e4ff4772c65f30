"""The stock export (checkpoint.save_stock, merge.py --stock-out): a merged model written as a stock checkpoint of its
family (E expert slots, slot i = its cluster's merged expert, router unchanged) that transformers' own class loads
without remote code and that gives the in-memory merged model's logits."""
import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from hcsmoe.calibration import collect_stats
from hcsmoe.checkpoint import EXPERT_COUNT_ATTRS, checkpoint_bytes, count_parameters, load_reduced, save_stock
from hcsmoe.families import moe_blocks
from hcsmoe.merging import merge_experts, prune_block
from hcsmoe.methods import ReduceConfig, reduce_model
from hcsmoe.toy import TINY_FAMILIES, build_tiny


def expert_count(config) -> int:
    return next(getattr(config, a) for a in EXPERT_COUNT_ATTRS if hasattr(config, a))


@pytest.mark.parametrize("family", TINY_FAMILIES)
@pytest.mark.parametrize("method", ["hc-smoe", "mixed-k"])     # mixed-k: 3 merged experts in layer 0, 5 in layer 1
def test_stock_checkpoint_loads_without_remote_code_and_gives_the_merged_logits(family, method, ids, tmp_path):
    model = build_tiny(family, seed=0)
    model.save_pretrained(tmp_path / "original")
    original_params = count_parameters(model)["params"]
    routers = {i: b.gate.weight.detach().clone() for i, b in moe_blocks(model)}
    shared = {n: p.detach().clone() for n, p in model.named_parameters() if "shared_expert" in n}
    stats = collect_stats(model, [ids, ids.flip(1)], progress=False)
    if method == "mixed-k":           # as M-SMoE's global budget can give; no native config holds it
        for (i, block), labels in zip(moe_blocks(model), ([0, 1, 2, 0, 1, 2, 0, 1], [0, 1, 2, 3, 4, 0, 1, 2])):
            block.experts = merge_experts(block.experts, np.array(labels), stats[i].freq.numpy())
    else:
        reduce_model(model, stats, ReduceConfig(method=method, num_experts=4))
    maps = {i: b.experts.expert_to_cluster.clone() for i, b in moe_blocks(model)}
    merged = {i: (b.experts.gate_up_proj.detach().clone(), b.experts.down_proj.detach().clone()) for i, b in moe_blocks(model)}
    # the case where the stock layout computes differently: a token whose top-k hits two members of one cluster
    _, _, idx = moe_blocks(model)[0][1].gate(stats[0].inputs)
    c = maps[0][idx]
    assert (c[:, 0] == c[:, 1]).any()
    with torch.no_grad():
        want = model(input_ids=ids).logits

    written = save_stock(model, str(tmp_path / "stock"))
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "stock").eval()          # no trust_remote_code
    assert type(loaded) is type(build_tiny(family))
    assert expert_count(loaded.config) == 8 and loaded.config.num_experts_per_tok == 2
    assert not hasattr(loaded.config, "auto_map") and not getattr(loaded.config, "hcsmoe_layers", None)
    assert count_parameters(loaded)["params"] == original_params                      # no size reduction
    assert checkpoint_bytes(str(tmp_path / "stock")) == pytest.approx(checkpoint_bytes(str(tmp_path / "original")), abs=8192)
    for i, block in moe_blocks(loaded):
        assert torch.equal(block.gate.weight, routers[i])                              # router unchanged
        gu, dn = merged[i]
        assert torch.equal(block.experts.gate_up_proj, gu[maps[i]])                   # slot e holds E'_{c(e)}
        assert torch.equal(block.experts.down_proj, dn[maps[i]])
        assert written[str(i)]["expert_to_cluster"] == maps[i].tolist()
    after = dict(loaded.named_parameters())
    assert all(torch.equal(after[n], p) for n, p in shared.items())                   # Qwen2-MoE shared expert
    with torch.no_grad():
        got = loaded(input_ids=ids).logits
    torch.testing.assert_close(got, want)            # float32 tolerances: w_i E'(x) + w_j E'(x) vs (w_i + w_j) E'(x)
    torch.testing.assert_close(load_reduced(str(tmp_path / "stock"))(input_ids=ids).logits, got, rtol=0, atol=0)
    assert json.load(open(tmp_path / "stock" / "hcsmoe.json"))["layout"] == "stock"


def test_stock_export_of_a_uniformly_pruned_model_is_the_native_one(ids, tmp_path):
    model = build_tiny("mixtral", seed=1)
    reduce_model(model, collect_stats(model, [ids], progress=False), ReduceConfig(method="f-prune", num_experts=4))
    with torch.no_grad():
        want = model(input_ids=ids).logits
    save_stock(model, str(tmp_path / "stock"))
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "stock").eval()
    assert loaded.config.num_local_experts == 4
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, want, rtol=0, atol=0)


def test_stock_export_refuses_a_k_that_differs_between_pruned_layers(tmp_path):
    model = build_tiny("qwen3_moe", seed=1)
    (_, b0), (_, b1) = moe_blocks(model)
    prune_block(b0, [0, 2, 7])
    prune_block(b1, [1, 2, 3, 5, 6])
    with pytest.raises(ValueError, match="router outputs / top_k differ between sparse layers"):
        save_stock(model, str(tmp_path / "stock"))


def test_merge_py_stock_out(tmp_path):
    import merge

    build_tiny("qwen2_moe", seed=0).save_pretrained(tmp_path / "src")
    common = ["--model", str(tmp_path / "src"), "--tokenizer", "bytes", "--experts", "3", "--calib-blocks", "2",
              "--calib-seq-len", "32", "--device", "cpu", "--dtype", "float32"]
    rep = merge.main(common + ["--out", str(tmp_path / "out"), "--stock-out", str(tmp_path / "stock")])
    assert rep["layout"] == "remote" and rep["stock_params"] == rep["params_before"]
    assert rep["stock_bytes_on_disk"] == pytest.approx(checkpoint_bytes(str(tmp_path / "src")), abs=8192)
    x = torch.randint(0, 256, (2, 20), generator=torch.Generator().manual_seed(1))
    reduced = load_reduced(str(tmp_path / "out"))
    stock = AutoModelForCausalLM.from_pretrained(tmp_path / "stock").eval()
    with torch.no_grad():
        torch.testing.assert_close(stock(input_ids=x).logits, reduced(input_ids=x).logits)
    only = merge.main(common + ["--stock-out", str(tmp_path / "stock2")])                 # --stock-out alone
    assert "layout" not in only and only["stock_bytes_on_disk"] == rep["stock_bytes_on_disk"]
    with pytest.raises(SystemExit):
        merge.main(common)                                                             # neither --out nor --stock-out

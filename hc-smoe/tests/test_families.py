import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from hcsmoe.calibration import collect_stats
from hcsmoe.checkpoint import WEIGHTS_FILE, count_parameters, load_reduced, save_reduced
from hcsmoe.families import UnsupportedArchitecture, moe_blocks
from hcsmoe.methods import ReduceConfig, reduce_model
from hcsmoe.toy import TINY_FAMILIES, build_tiny


@pytest.mark.parametrize("family", TINY_FAMILIES)
@pytest.mark.parametrize("method", ["hc-smoe", "o-prune"])
def test_family_builds_merges_runs_and_round_trips(family, method, ids, tmp_path):
    model = build_tiny(family, seed=0)
    before = count_parameters(model)
    stats = collect_stats(model, [ids, ids.flip(1)], progress=False)
    assert sorted(stats) == [0, 1]
    for st in stats.values():
        assert st.freq.sum().item() == pytest.approx(st.top_k)       # each token picks exactly top_k experts
        assert st.n_tokens == 2 * ids.numel()
    reduce_model(model, stats, ReduceConfig(method=method, num_experts=4))
    logits = model(input_ids=ids).logits
    assert torch.isfinite(logits).all() and logits.shape == (2, ids.shape[1], 256)
    after = count_parameters(model)
    assert after["expert_params"] * 2 == before["expert_params"]
    assert after["params"] < before["params"]
    save_reduced(model, str(tmp_path / "m"))
    loaded = load_reduced(str(tmp_path / "m"))
    torch.testing.assert_close(loaded(input_ids=ids).logits, logits, rtol=0, atol=0)
    full_dir = tmp_path / "full"
    full = build_tiny(family, seed=0)
    reduce_model(full, collect_stats(full, [ids], progress=False), ReduceConfig(num_experts=8))
    save_reduced(full, str(full_dir))
    assert (tmp_path / "m" / WEIGHTS_FILE).stat().st_size < (full_dir / WEIGHTS_FILE).stat().st_size


def test_qwen2_shared_expert_untouched(ids):
    model = build_tiny("qwen2_moe", seed=0)
    shared = {n: p.clone() for n, p in model.named_parameters() if "shared_expert" in n}
    reduce_model(model, collect_stats(model, [ids], progress=False), ReduceConfig(num_experts=2))
    after = dict(model.named_parameters())
    assert shared and all(torch.equal(after[n], p) for n, p in shared.items())


def test_unsupported_architecture(ids):
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2))
    with pytest.raises(UnsupportedArchitecture, match="unsupported architecture 'llama'"):
        moe_blocks(llama)
    with pytest.raises(UnsupportedArchitecture):
        collect_stats(llama, [ids], progress=False)

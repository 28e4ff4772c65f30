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


def test_layerwise_device_auto_matches(ids):
    model = build_tiny("qwen3_moe", seed=2)
    a = collect_stats(model, [ids], progress=False)
    b = collect_stats(model, [ids], device="auto", progress=False)
    c = collect_stats(model, [ids], device="cpu", progress=False)
    for i in a:
        for other in (b, c):
            torch.testing.assert_close(a[i].expert_output_mean, other[i].expert_output_mean)
            torch.testing.assert_close(a[i].freq, other[i].freq)


def test_calibration_features_are_every_expert_on_every_token(ids):
    """o_i = mean_t E_i(x_t) over ALL tokens, and f_i counts top-k selections with the router's real top_k."""
    from hcsmoe.calibration import expert_forward

    model = build_tiny("mixtral", seed=3, top_k=3)
    stats = collect_stats(model, [ids], progress=False)
    block = moe_blocks(model)[1][1]
    x = stats[1].inputs
    assert x.shape[0] == ids.numel()
    want = torch.stack([expert_forward(block.experts, e, x).mean(0) for e in range(8)])
    torch.testing.assert_close(stats[1].expert_output_mean, want.detach(), rtol=1e-4, atol=1e-6)
    _, _, idx = block.gate(x)
    assert idx.shape[1] == 3
    torch.testing.assert_close(stats[1].freq, torch.bincount(idx.flatten(), minlength=8).float() / x.shape[0])


def test_qwen_dense_mlp_only_layers_are_skipped(ids):
    from transformers import Qwen2MoeForCausalLM

    from hcsmoe.toy import tiny_config

    config, _ = tiny_config("qwen2_moe", layers=3)
    config.mlp_only_layers = [1]
    model = Qwen2MoeForCausalLM(config).eval()
    assert [i for i, _ in moe_blocks(model)] == [0, 2]
    stats = collect_stats(model, [ids], progress=False)
    assert sorted(stats) == [0, 2]
    reduce_model(model, stats, ReduceConfig(num_experts=5))
    assert torch.isfinite(model(input_ids=ids).logits).all()

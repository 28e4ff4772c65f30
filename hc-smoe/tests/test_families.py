
import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from hcsmoe.calibration import collect_stats
from hcsmoe.checkpoint import checkpoint_bytes, count_parameters, load_reduced, save_reduced
from hcsmoe.families import UnsupportedArchitecture, moe_blocks
from hcsmoe.merging import prune_block
from hcsmoe.methods import ReduceConfig, reduce_model
from hcsmoe.toy import TINY_FAMILIES, build_tiny


@pytest.mark.parametrize("family", TINY_FAMILIES)
@pytest.mark.parametrize("method", ["hc-smoe", "o-prune"])
def test_family_builds_merges_runs_and_round_trips(family, method, ids, tmp_path):
    """save_reduced -> transformers' own AutoModelForCausalLM.from_pretrained -> the same logits, fewer bytes.

    Pruned models (router and experts both k) are stock checkpoints of their family (config expert count = k);
    merged ones keep E router outputs -> k experts and load with trust_remote_code=True."""
    model = build_tiny(family, seed=0)
    model.save_pretrained(tmp_path / "original")
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
    layout = save_reduced(model, str(tmp_path / "m"))
    assert layout == ("native" if method == "o-prune" else "remote")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "m", trust_remote_code=layout == "remote").eval()
    assert (type(loaded) is type(build_tiny(family))) == (layout == "native")
    if layout == "native":
        assert loaded.config.num_experts_per_tok == 2 and 4 in {getattr(loaded.config, a, None) for a in
                                                                ("num_local_experts", "num_experts")}
    assert count_parameters(loaded)["params"] == after["params"]
    torch.testing.assert_close(loaded(input_ids=ids).logits, logits, rtol=0, atol=0)
    torch.testing.assert_close(load_reduced(str(tmp_path / "m"))(input_ids=ids).logits, logits, rtol=0, atol=0)
    saved, original = checkpoint_bytes(str(tmp_path / "m")), checkpoint_bytes(str(tmp_path / "original"))
    removed = (before["params"] - after["params"]) * 4                 # float32 bytes of the dropped experts (+ rows)
    assert original - saved == pytest.approx(removed, abs=8192)       # real size reduction on disk (header slack)


def test_merged_checkpoint_without_trust_remote_code_fails_loudly(ids, tmp_path):
    model = build_tiny("mixtral", seed=0)
    reduce_model(model, collect_stats(model, [ids], progress=False), ReduceConfig(num_experts=4))
    save_reduced(model, str(tmp_path / "m"))
    with pytest.raises(Exception, match="mismatch"):                 # never a silently re-initialised model
        AutoModelForCausalLM.from_pretrained(tmp_path / "m")


def test_non_uniform_k_round_trips_through_from_pretrained(ids, tmp_path):
    """Pruned to k = 3 in layer 0 and k = 5 in layer 1: no single config expert count, so the remote layout."""
    model = build_tiny("qwen3_moe", seed=1)
    (_, b0), (_, b1) = moe_blocks(model)
    prune_block(b0, [0, 2, 7])
    prune_block(b1, [1, 2, 3, 5, 6])
    logits = model(input_ids=ids).logits
    assert save_reduced(model, str(tmp_path / "m")) == "remote"
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "m", trust_remote_code=True).eval()
    assert [b.experts.num_experts for _, b in moe_blocks(loaded)] == [3, 5]
    torch.testing.assert_close(loaded(input_ids=ids).logits, logits, rtol=0, atol=0)


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


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_pre_layer_modules_are_what_sits_beside_the_decoder_layers(family):
    """Calibration moves these to the calibration device for the capture before layer 0 (embeddings, rotary tables)."""
    from hcsmoe.calibration import pre_layer_modules

    m = build_tiny(family)
    mods = pre_layer_modules(m, m.model.layers)
    assert any(x is m.model.embed_tokens for x in mods) and any(x is m.model.rotary_emb for x in mods)
    assert all(x is not m.model.layers for x in mods) and all(x is not m.lm_head for x in mods)

"""The family adapters against transformers' own MoE classes: the top-k frequencies, router logits, summed router
probabilities and renormalisation flag that calibration records equal what each model's OWN router returns in a
normal forward pass (every family, norm_topk_prob on and off, top-k 1-4, float32 and bfloat16); the O-prune
simulator reproduces the model's own experts module; a block stored in another expert layout is refused."""
import pytest
import torch

from hcsmoe.calibration import collect_stats, expert_forward
from hcsmoe.families import UnsupportedArchitecture, moe_blocks
from hcsmoe.methods import moe_output
from hcsmoe.toy import TINY_FAMILIES, build_tiny

CASES = [(f, norm, top_k, dtype) for f in TINY_FAMILIES for norm, top_k in [(True, 2), (False, 4)]
         for dtype in (torch.float32, torch.bfloat16)] + [("mixtral", True, 1, torch.float32),
                                                          ("qwen2_moe", False, 3, torch.bfloat16)]


def _router_outputs(model, ids):
    """Each sparse block's input and its router's (logits, top-k weights, top-k indices) in one ordinary forward."""
    seen, hooks = {}, []
    for i, block in moe_blocks(model):
        hooks.append(block.register_forward_pre_hook(
            lambda m, args, i=i: seen.setdefault(i, {}).update(x=args[0].reshape(-1, args[0].shape[-1]))))
        hooks.append(block.gate.register_forward_hook(
            lambda m, args, out, i=i: seen.setdefault(i, {}).update(logits=out[0], weights=out[1], idx=out[2])))
    try:
        with torch.no_grad():
            model(input_ids=ids, use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    return seen


@pytest.mark.parametrize("family,norm,top_k,dtype", CASES)
def test_calibration_counts_equal_the_models_own_router(family, norm, top_k, dtype, ids):
    model = build_tiny(family, seed=5, top_k=top_k).to(dtype)
    if family != "mixtral":                       # Mixtral's router always renormalises (no flag)
        for _, block in moe_blocks(model):
            block.gate.norm_topk_prob = norm
    batches = [ids, ids.flip(1)]
    stats = collect_stats(model, batches, progress=False)
    own = [_router_outputs(model, b) for b in batches]
    for i, _ in moe_blocks(model):
        st = stats[i]
        idx = torch.cat([o[i]["idx"] for o in own])
        weights = torch.cat([o[i]["weights"] for o in own]).float()
        logits = torch.cat([o[i]["logits"] for o in own]).float()
        n = idx.shape[0]
        assert st.n_tokens == n and st.top_k == idx.shape[1] == top_k
        counts = torch.bincount(idx.flatten(), minlength=8).double()
        torch.testing.assert_close(st.freq, (counts / n).float(), rtol=0, atol=0)          # the same top-k, token by token
        torch.testing.assert_close(st.router_logits, logits, rtol=0, atol=0)
        torch.testing.assert_close(st.prob_sum, logits.softmax(-1).double().sum(0).float(), rtol=1e-5, atol=1e-5)
        sums_to_one = bool(torch.allclose(weights.sum(-1), torch.ones(n), atol=1e-2))
        assert st.renormalize == sums_to_one == (norm or family == "mixtral")


@pytest.mark.parametrize("family", TINY_FAMILIES)
@pytest.mark.parametrize("norm", [True, False])
def test_o_prune_simulator_equals_each_familys_experts_module(family, norm, ids):
    """moe_output (softmax, top-k, optional renormalisation, weighted sum) = the model's own experts(x, idx, w)."""
    model = build_tiny(family, seed=6, top_k=3)
    if family != "mixtral":
        for _, block in moe_blocks(model):
            block.gate.norm_topk_prob = norm
    stats = collect_stats(model, [ids], progress=False)
    own = _router_outputs(model, ids)
    for i, block in moe_blocks(model):
        st, o = stats[i], own[i]
        torch.testing.assert_close(st.inputs, o["x"], rtol=0, atol=0)                     # the block's real input
        with torch.no_grad():
            out = torch.stack([expert_forward(block.experts, e, st.inputs) for e in range(8)])
            want = block.experts(o["x"], o["idx"], o["weights"])
        torch.testing.assert_close(moe_output(st.router_logits, out, range(8), st.top_k, st.renormalize), want,
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("attr,value", [("is_transposed", True), ("is_concatenated", False), ("has_bias", True),
                                        ("has_gate", False), ("has_post_expert_norm", True)])
def test_other_expert_layouts_are_refused(attr, value):
    model = build_tiny("qwen3_moe", seed=0)
    setattr(moe_blocks(model)[1][1].experts, attr, value)
    with pytest.raises(UnsupportedArchitecture, match=f"layer 1: .*{attr}"):
        moe_blocks(model)


def test_transposed_expert_tensors_are_refused():
    model = build_tiny("mixtral", seed=0)
    ex = moe_blocks(model)[0][1].experts
    ex.down_proj = torch.nn.Parameter(ex.down_proj.data.transpose(1, 2).contiguous())    # (E, d_ff, d): wrong way round
    with pytest.raises(UnsupportedArchitecture, match="expected"):
        moe_blocks(model)

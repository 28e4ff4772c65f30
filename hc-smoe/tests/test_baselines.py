"""The paper's baselines do what they are defined to do: F-prune, S-prune, M-SMoE (its merge step), random grouping;
and the features and the perplexity they are scored with."""
import copy

import numpy as np
import pytest
import torch

from hcsmoe.calibration import LayerStats, collect_stats, expert_forward
from hcsmoe.checkpoint import load_reduced, save_reduced
from hcsmoe.evaluation import perplexity
from hcsmoe.families import moe_blocks
from hcsmoe.merging import merge_experts, permute_expert, weight_matching_permutation
from hcsmoe.methods import (ReduceConfig, expert_features, global_layer_budget, m_smoe_groups, random_groups,
                            reduce_model)
from hcsmoe.toy import build_tiny


def _stats(freq, logits, prob_sum=None, layer=0):
    e = len(freq)
    return LayerStats(layer=layer, top_k=2, renormalize=True, n_tokens=logits.shape[0],
                      expert_output_mean=torch.zeros(e, 4), freq=torch.as_tensor(freq, dtype=torch.float32),
                      prob_sum=torch.as_tensor(prob_sum if prob_sum is not None else freq, dtype=torch.float32),
                      router_logits=logits, inputs=torch.zeros(0, 4))


@pytest.fixture(scope="module")
def mixtral():
    return build_tiny("mixtral", seed=0)


@pytest.mark.parametrize("method,key", [("f-prune", "freq"), ("s-prune", "prob_sum")])
def test_f_prune_and_s_prune_keep_the_top_experts(mixtral, ids, method, key):
    stats = collect_stats(mixtral, [ids, ids.flip(1)], progress=False)
    info = reduce_model(copy.deepcopy(mixtral), stats, ReduceConfig(method=method, num_experts=3))
    for i, st in stats.items():
        score = getattr(st, key).numpy()
        kept = info[i]["kept"]
        assert len(kept) == 3 and score[kept].min() >= np.delete(score, kept).max()


def test_m_smoe_dominant_experts_and_router_logit_grouping():
    """Dominant = the k most frequent; every other expert joins the dominant one with the most similar (cosine)
    router-logit column: here expert 4's column is 3 x expert 0's, expert 5's is -expert 2's + a copy of 1's."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(50, 3, generator=g)                       # columns of experts 0, 1, 2
    logits = torch.cat([base, torch.randn(50, 1, generator=g), 3 * base[:, :1], base[:, 1:2] - 0.1 * base[:, 2:]], 1)
    freq = [0.5, 0.4, 0.3, 0.1, 0.05, 0.02]                      # dominant: 0, 1, 2
    labels = m_smoe_groups(_stats(freq, logits), 3)
    assert labels[4] == labels[0] and labels[5] == labels[1]
    assert len({labels[0], labels[1], labels[2]}) == 3          # each dominant expert heads its own group
    cos = torch.nn.functional.cosine_similarity(logits[:, 3:4], logits[:, :3], dim=0)
    assert labels[3] == labels[int(cos.argmax())]


def test_global_layer_budget_gives_evenly_used_layers_more_experts():
    """k = 4, 2 layers: 8 dominant experts in all. Each layer's top expert, then by share: 0.3 (layer 1), then five
    of layer 0's 1/8 (> layer 1's 0.04): layer 0 keeps 6, the lopsided layer 1 keeps 2."""
    even = np.full(8, 1 / 8)
    skewed = np.array([0.6, 0.3, 0.04, 0.02, 0.02, 0.01, 0.005, 0.005])
    assert global_layer_budget({0: even, 1: skewed}, 4) == {0: 6, 1: 2}
    assert global_layer_budget({0: 3 * even, 1: skewed / 2}, 4) == {0: 6, 1: 2}      # shares, not raw counts
    assert global_layer_budget({0: even, 1: skewed}, 8) == {0: 8, 1: 8}
    assert global_layer_budget({0: even, 1: np.eye(8)[3]}, 1) == {0: 1, 1: 1}        # every layer keeps >= 1


def test_m_smoe_reduces_with_per_layer_counts_and_round_trips(ids, tmp_path):
    model = build_tiny("qwen3_moe", seed=2, layers=3)
    stats = collect_stats(model, [ids, ids.flip(1)], progress=False)
    with torch.no_grad():                       # make layer 1's routing lopsided so the budget is not uniform
        st = stats[1]
        st.freq.copy_(torch.tensor([0.9, 0.5, 0.3, 0.1, 0.1, 0.05, 0.03, 0.02]))
    want = global_layer_budget({i: s.freq.numpy() for i, s in stats.items()}, 4)
    assert want[1] < 4 and sum(want.values()) == 12
    cfg = ReduceConfig(method="m-smoe", num_experts=4)
    assert (cfg.merge, cfg.layer_budget) == ("weight-matching", "global")
    info = reduce_model(model, stats, cfg)
    assert {i: len(v["groups"]) for i, v in info.items()} == want
    assert [b.experts.num_experts for _, b in moe_blocks(model)] == [want[0], want[1], want[2]]
    for i, v in info.items():                   # the k_l most frequent experts head the groups
        dom = set(np.argsort(-stats[i].freq.numpy(), kind="stable")[: want[i]].tolist())
        assert all(len(dom & set(g)) == 1 for g in v["groups"])
    logits = model(input_ids=ids).logits
    assert save_reduced(model, str(tmp_path / "m")) == "remote"
    torch.testing.assert_close(load_reduced(str(tmp_path / "m"))(input_ids=ids).logits, logits, rtol=0, atol=0)
    uniform = reduce_model(build_tiny("qwen3_moe", seed=2, layers=3), stats,
                           ReduceConfig(method="m-smoe", num_experts=4, layer_budget="uniform"))
    assert all(len(v["groups"]) == 4 for v in uniform.values())


def test_weight_matching_aligns_a_permuted_copy(mixtral):
    """M-SMoE's permutation alignment: expert 1 := expert 0 with shuffled neurons. Weight matching finds the
    shuffle, so merging {0, 1} gives expert 0 exactly, whereas the plain average blurs it."""
    ex = copy.deepcopy(moe_blocks(mixtral)[0][1].experts)
    shuffle = torch.randperm(128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ex.gate_up_proj[1], ex.down_proj[1] = permute_expert(ex.gate_up_proj[0], ex.down_proj[0], shuffle)
    perm = weight_matching_permutation(ex, 0, 1)
    gu, dn = permute_expert(ex.gate_up_proj[1], ex.down_proj[1], perm)
    torch.testing.assert_close(gu, ex.gate_up_proj[0], rtol=0, atol=0)
    torch.testing.assert_close(dn, ex.down_proj[0], rtol=0, atol=0)
    labels = np.array([0, 0, 1, 2, 3, 4, 5, 6])
    freq = np.array([0.3, 0.7, 1, 1, 1, 1, 1, 1])
    x = torch.randn(64, 64)
    aligned = merge_experts(ex, labels, freq, "weight-matching")
    plain = merge_experts(ex, labels, freq, "freq")
    target = expert_forward(ex, 0, x)
    assert (expert_forward(aligned, 0, x) - target).abs().max() < 1e-5
    assert (expert_forward(plain, 0, x) - target).abs().max() > 1e-3


@pytest.mark.parametrize("e,k", [(8, 4), (8, 1), (8, 8), (60, 45)])
def test_random_groups_partition_into_k_nonempty_groups(e, k):
    rng = np.random.default_rng(0)
    draws = [random_groups(e, k, rng) for _ in range(20)]
    for labels in draws:
        assert labels.shape == (e,) and sorted(set(labels.tolist())) == list(range(k))
    if 1 < k < e:
        assert len({tuple(d) for d in draws}) > 1               # it is random


def test_feature_matrices(mixtral, ids):
    stats = collect_stats(mixtral, [ids], progress=False)
    ex = moe_blocks(mixtral)[0][1].experts
    out = expert_features(stats[0], ex, "expert-output")
    logit = expert_features(stats[0], ex, "router-logits")
    w = expert_features(stats[0], ex, "weight")
    assert out.shape == (8, 64) and logit.shape == (8, ids.numel()) and w.shape == (8, 3 * 64 * 128)
    np.testing.assert_allclose(logit, stats[0].router_logits.T.numpy(), rtol=1e-6)
    np.testing.assert_allclose(w[2, : 2 * 128 * 64], ex.gate_up_proj[2].detach().reshape(-1).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="unknown feature"):
        expert_features(stats[0], ex, "gradients")


def test_perplexity_of_known_predictors():
    class Fixed(torch.nn.Module):
        def __init__(self, logits_fn):
            super().__init__()
            self.w, self.f = torch.nn.Parameter(torch.zeros(1)), logits_fn

        def forward(self, input_ids, **kw):
            return type("O", (), {"logits": self.f(input_ids)})()

    blocks = torch.randint(0, 256, (5, 33), generator=torch.Generator().manual_seed(0))
    uniform = Fixed(lambda ids: torch.zeros(*ids.shape, 256))
    assert perplexity(uniform, blocks, batch_size=2) == pytest.approx(256.0, rel=1e-5)
    oracle = Fixed(lambda ids: 50.0 * torch.nn.functional.one_hot(torch.roll(ids, -1, 1), 256).float())
    assert perplexity(oracle, blocks) == pytest.approx(1.0, abs=1e-6)

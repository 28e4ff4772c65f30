import copy

import numpy as np
import pytest
import torch

from hcsmoe.calibration import collect_stats, expert_forward
from hcsmoe.families import moe_blocks
from hcsmoe.merging import MergedExperts, cluster_weights, merge_experts, permute_expert, prune_block
from hcsmoe.methods import METHODS, ReduceConfig, moe_output, reduce_model
from hcsmoe.toy import build_tiny


@pytest.fixture(scope="module")
def mixtral():
    return build_tiny("mixtral", seed=0)


@pytest.mark.parametrize("merge", ["freq", "average", "fix-dom", "zipit", "weight-matching"])
@pytest.mark.parametrize("feature", ["expert-output", "router-logits", "weight"])
def test_k_equals_e_is_identity(mixtral, ids, merge, feature):
    ref = mixtral(input_ids=ids).logits
    stats = collect_stats(mixtral, [ids], progress=False)
    m = copy.deepcopy(mixtral)
    reduce_model(m, stats, ReduceConfig(num_experts=8, merge=merge, feature=feature))
    assert all(isinstance(b.experts, MergedExperts) for _, b in moe_blocks(m))
    torch.testing.assert_close(m(input_ids=ids).logits, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_identical_experts_merge_changes_nothing(ids, method):
    model = build_tiny("mixtral", seed=1)
    with torch.no_grad():
        for _, b in moe_blocks(model):
            b.experts.gate_up_proj.copy_(b.experts.gate_up_proj[:1].expand_as(b.experts.gate_up_proj))
            b.experts.down_proj.copy_(b.experts.down_proj[:1].expand_as(b.experts.down_proj))
    ref = model(input_ids=ids).logits
    stats = collect_stats(model, [ids], progress=False)
    for merge in ["freq", "average", "fix-dom", "zipit", "weight-matching"]:
        m = copy.deepcopy(model)
        reduce_model(m, stats, ReduceConfig(method=method, num_experts=3, merge=merge, max_combos=20))
        torch.testing.assert_close(m(input_ids=ids).logits, ref, rtol=0, atol=1e-5)


def test_frequency_weights_sum_to_one_per_cluster():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 0, 2, 1, 0, 3, 3])
    freq = rng.random(8)
    freq[6:] = 0.0  # a never-selected cluster falls back to uniform weights
    for merge in ["freq", "average"]:
        a = cluster_weights(labels, freq, merge)
        for c in range(4):
            assert a[labels == c].sum() == pytest.approx(1.0)
    a = cluster_weights(labels, freq, "freq")
    assert a[0] == pytest.approx(freq[0] / (freq[0] + freq[2] + freq[5]))
    assert a[6] == pytest.approx(0.5)


def test_merged_weights_are_frequency_weighted_average(mixtral):
    ex = moe_blocks(mixtral)[0][1].experts
    labels = np.array([0, 0, 1, 1, 1, 2, 3, 3])
    freq = np.array([0.1, 0.3, 0.2, 0.2, 0.4, 0.5, 0.0, 0.3])
    merged = merge_experts(ex, labels, freq, "freq")
    want = (0.1 * ex.gate_up_proj[0] + 0.3 * ex.gate_up_proj[1]) / 0.4
    torch.testing.assert_close(merged.gate_up_proj[0], want.detach())
    torch.testing.assert_close(merged.down_proj[3], ex.down_proj[7].detach())
    assert merged.expert_to_cluster.tolist() == labels.tolist()
    plain = merge_experts(ex, labels, freq, "average")                 # the paper's "average" ablation: 1/|c| each
    torch.testing.assert_close(plain.gate_up_proj[1], ex.gate_up_proj[2:5].mean(0).detach())
    torch.testing.assert_close(plain.down_proj[3], ex.down_proj[6:8].mean(0).detach())


def test_merged_experts_sum_routing_weights_of_one_cluster(mixtral):
    ex = moe_blocks(mixtral)[0][1].experts
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    merged = merge_experts(ex, labels, np.ones(8), "average")
    x = torch.randn(5, 64)
    idx = torch.tensor([[0, 1], [2, 5], [7, 6], [0, 4], [3, 2]])
    w = torch.rand(5, 2)
    y = merged(x, idx, w)
    want = torch.stack([sum(w[t, j] * expert_forward(merged, labels[idx[t, j]], x[t:t + 1])[0] for j in range(2))
                        for t in range(5)])
    torch.testing.assert_close(y, want.detach(), rtol=1e-5, atol=1e-6)


def test_expert_to_cluster_map_lives_with_the_weights(mixtral):
    """Merging or pruning a layer that sits on a GPU must give a GPU map: a CPU map indexed by the router's GPU
    top-k indices fails in forward (seen on an H100). Checked here with the meta device standing in for the GPU."""
    ex = moe_blocks(mixtral)[0][1].experts
    on_meta = copy.deepcopy(ex).to("meta")
    merged = merge_experts(on_meta, np.array([0, 0, 1, 1, 2, 2, 3, 3]), np.ones(8), "average")
    assert merged.expert_to_cluster.device.type == "meta" and merged.expert_to_cluster.dtype == torch.long
    block = copy.deepcopy(moe_blocks(mixtral)[0][1]).to("meta")
    prune_block(block, [1, 4, 6])
    assert block.experts.expert_to_cluster.device.type == "meta"


def test_permuting_neurons_keeps_the_expert_function(mixtral):
    ex = moe_blocks(mixtral)[0][1].experts
    perm = torch.randperm(128)
    gu, dn = permute_expert(ex.gate_up_proj[2], ex.down_proj[2], perm)
    x = torch.randn(7, 64)
    moved = MergedExperts(gu[None].detach(), dn[None].detach(), ex.act_fn, torch.zeros(1))
    torch.testing.assert_close(expert_forward(moved, 0, x), expert_forward(ex, 2, x), rtol=1e-5, atol=1e-6)


def _experts_with_permuted_copy(mixtral):
    """Layer 0's experts with expert 1 replaced by expert 0 with its neurons shuffled."""
    ex = copy.deepcopy(moe_blocks(mixtral)[0][1].experts)
    with torch.no_grad():
        gu, dn = permute_expert(ex.gate_up_proj[0], ex.down_proj[0], torch.randperm(128))
        ex.gate_up_proj[1], ex.down_proj[1] = gu, dn
    return ex


@pytest.mark.parametrize("use_inputs", [True, False])
def test_fix_dom_recovers_a_permuted_copy(mixtral, use_inputs):
    """Expert 1 := expert 0 with shuffled neurons. Plain averaging blurs them; fix-dom aligns first and is exact."""
    ex = _experts_with_permuted_copy(mixtral)
    labels = np.array([0, 0, 1, 2, 3, 4, 5, 6])
    freq = np.array([0.6, 0.4, 1, 1, 1, 1, 1, 1])
    x = torch.randn(256, 64)
    fixed = merge_experts(ex, labels, freq, "fix-dom", x if use_inputs else None)
    plain = merge_experts(ex, labels, freq, "freq")
    target = expert_forward(ex, 0, x)
    assert (expert_forward(fixed, 0, x) - target).abs().max() < 1e-4
    assert (expert_forward(plain, 0, x) - target).abs().max() > 1e-3


def test_zipit_zips_a_permuted_copy_and_keeps_a_lone_expert(mixtral):
    """Expert 1 := expert 0 with shuffled neurons: ZipIt pairs each neuron with its copy (correlation 1), so the
    merged expert is expert 0 exactly; a singleton cluster stays itself; without calibration inputs it is an error."""
    ex = _experts_with_permuted_copy(mixtral)
    labels = np.array([0, 0, 1, 2, 3, 4, 5, 6])
    freq = np.array([0.7, 0.3, 1, 1, 1, 1, 1, 1])
    x = torch.randn(256, 64)
    zipped = merge_experts(ex, labels, freq, "zipit", x)
    for c, e in [(0, 0), (1, 2), (6, 7)]:
        torch.testing.assert_close(expert_forward(zipped, c, x), expert_forward(ex, e, x).detach(), rtol=1e-4, atol=1e-5)
    plain = merge_experts(ex, labels, freq, "freq")
    assert (expert_forward(plain, 0, x) - expert_forward(ex, 0, x)).abs().max() > 1e-3
    with pytest.raises(ValueError, match="zipit merging needs calibration inputs"):
        merge_experts(ex, labels, freq, "zipit", None)


def test_o_prune_simulator_matches_the_pruned_block(mixtral, ids):
    stats = collect_stats(mixtral, [ids], progress=False)
    st = stats[0]
    block = copy.deepcopy(moe_blocks(mixtral)[0][1])
    x = st.inputs
    out = torch.stack([expert_forward(block.experts, i, x) for i in range(8)]).detach()
    torch.testing.assert_close(moe_output(st.router_logits, out, range(8), 2, True), block(x[None])[0].detach(),
                               rtol=1e-5, atol=1e-6)
    keep = [1, 3, 4, 6]
    prune_block(block, keep)
    torch.testing.assert_close(moe_output(st.router_logits, out, keep, 2, True), block(x[None])[0].detach(),
                               rtol=1e-5, atol=1e-6)


def test_o_prune_is_best_of_all_subsets(mixtral, ids):
    stats = collect_stats(mixtral, [ids], progress=False)
    m = copy.deepcopy(mixtral)
    info = reduce_model(m, stats, ReduceConfig(method="o-prune", num_experts=4))
    st = stats[0]
    ex = moe_blocks(mixtral)[0][1].experts
    out = torch.stack([expert_forward(ex, i, st.inputs) for i in range(8)]).detach()
    full = moe_output(st.router_logits, out, range(8), 2, True)
    err = lambda s: (moe_output(st.router_logits, out, s, 2, True) - full).pow(2).sum().item()
    best = err(info[0]["kept"])
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert best <= err(sorted(rng.choice(8, 4, replace=False))) + 1e-9


def test_bad_inputs(mixtral, ids):
    stats = collect_stats(mixtral, [ids], progress=False)
    for k in [0, 9]:
        with pytest.raises(ValueError, match="num_experts"):
            reduce_model(copy.deepcopy(mixtral), stats, ReduceConfig(num_experts=k))
    with pytest.raises(ValueError, match="unknown linkage"):
        reduce_model(copy.deepcopy(mixtral), stats, ReduceConfig(linkage="centroid"))
    with pytest.raises(ValueError, match="empty calibration"):
        collect_stats(mixtral, [], progress=False)
    with pytest.raises(ValueError, match="empty calibration"):
        collect_stats(mixtral, [torch.zeros(0, 8, dtype=torch.long)], progress=False)


def _ties_and_random_matrices():
    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((n, n)) for n in (1, 2, 3, 5, 8, 33, 64) for _ in range(3)]
    mats += [rng.integers(0, 3, (n, n)).astype(np.float64) for n in (4, 6, 16, 50) for _ in range(3)]   # many ties
    mats += [np.zeros((7, 7)), -np.zeros((7, 7)), np.ones((12, 12)),                                    # all tied, +-0
             np.outer(rng.standard_normal(10), np.ones(10)),                                            # row-constant
             np.kron(rng.standard_normal((3, 3)), np.ones((4, 4)))]                                     # tied blocks
    return mats


def test_assignment_of_the_negated_copy_equals_scipys_maximize():
    """_assignment solves min(-sim); scipy's maximize=True must pick the SAME permutation, ties included."""
    import itertools

    from scipy.optimize import linear_sum_assignment

    from hcsmoe.merging import _assignment

    for m in _ties_and_random_matrices():
        row, col = linear_sum_assignment(m, maximize=True)
        want = np.empty(len(m), dtype=np.int64)
        want[row] = col
        got = _assignment(torch.as_tensor(m)).numpy()
        assert np.array_equal(got, want), m
        assert np.array_equal(_assignment(torch.as_tensor(m)).numpy(), got)                      # deterministic
        assert np.array_equal(_assignment(torch.as_tensor(m, dtype=torch.float32)).numpy(),
                              _assignment(torch.as_tensor(m.astype(np.float32).astype(np.float64))).numpy())
        if len(m) <= 6:                                                                          # and it is optimal
            best = max(sum(m[i, p[i]] for i in range(len(m))) for p in itertools.permutations(range(len(m))))
            assert m[np.arange(len(m)), got].sum() == pytest.approx(best)

import itertools

import pytest
import torch
import torch.nn.functional as F

from dfac.mixers import DDNMixer, MeanShapeMixer, QMixer, QPLEXMixer, VDNMixer, build_mixer

n, A, S, N = 3, 4, 6, 8


def test_ddn_is_mean_shape_with_vdn():
    z = torch.randn(2, 5, n, N)
    s = torch.randn(2, 5, S)
    assert torch.allclose(DDNMixer()(z, s), MeanShapeMixer(VDNMixer())(z, s), atol=1e-5)


@pytest.mark.parametrize("alg", ["dmix", "dplex"])
def test_mean_shape_mixture_reproduces_expected_value_mixer_mean(alg):
    torch.manual_seed(0)
    mixer = build_mixer(alg, n, S, A)
    z = torch.randn(2, 5, n, N) * 3
    s = torch.randn(2, 5, S)
    a = F.one_hot(torch.randint(0, A, (2, 5, n)), A).float()
    max_q = z.mean(-1) + torch.rand(2, 5, n)
    z_jt = mixer(z, s, a, max_q)
    assert z_jt.shape == (2, 5, N)
    q_jt = mixer.mean_mixer(z.mean(-1), s, a, max_q)
    assert torch.allclose(z_jt.mean(-1), q_jt, atol=1e-5)  # mean part = expected-value mixer of E[Z_i]
    # shape part = sum of the agents' centred quantile functions
    shape = (z - z.mean(-1, keepdim=True)).sum(-2)
    assert torch.allclose(z_jt - q_jt.unsqueeze(-1), shape, atol=1e-5)


def test_qmix_is_monotonic_in_agent_utilities():
    torch.manual_seed(1)
    m = QMixer(n, S)
    q = torch.randn(64, 1, n, requires_grad=True)
    m(q, torch.randn(64, 1, S)).sum().backward()
    assert (q.grad >= 0).all()


def _joint_greedy(alg, mixer, z, s):
    """argmax over all A^n joint actions of the mean of the mixed distribution, by brute force."""
    best, best_a = -float("inf"), None
    means = z.mean(-1)  # [n, A]
    max_q = means.max(-1).values
    for joint in itertools.product(range(A), repeat=n):
        idx = torch.tensor(joint)
        chosen = z[torch.arange(n), idx][None, None]  # [1, 1, n, N]
        onehot = F.one_hot(idx, A).float()[None, None]
        v = mixer(chosen, s[None, None], onehot, max_q[None, None]).mean().item()
        if v > best + 1e-6:
            best, best_a = v, joint
    return best_a


@pytest.mark.parametrize("alg", ["ddn", "dmix", "dplex"])
def test_igm_greedy_joint_action_is_per_agent_greedy(alg):
    torch.manual_seed(2)
    mixer = build_mixer(alg, n, S, A)
    for trial in range(10):
        z = torch.randn(n, A, N) * 2  # per-agent quantile samples Z_i(a, tau_k)
        s = torch.randn(S)
        per_agent = tuple(z.mean(-1).argmax(-1).tolist())
        assert _joint_greedy(alg, mixer, z, s) == per_agent


def test_qplex_equals_value_at_greedy_actions():
    # at the per-agent greedy actions the advantages vanish: Q_jt = sum_i w_i max Q_i + b
    torch.manual_seed(3)
    m = QPLEXMixer(n, S, A)
    q = torch.randn(4, 2, n, A)
    s = torch.randn(4, 2, S)
    greedy = q.argmax(-1)
    max_q = q.max(-1).values
    out = m(max_q, s, F.one_hot(greedy, A).float(), max_q)
    v = m.transform(max_q.reshape(-1, n), s.reshape(-1, S)).sum(-1).view(4, 2)
    assert torch.allclose(out, v, atol=1e-5)


def test_build_mixer_kinds():
    assert build_mixer("iql", n, S, A) is None and build_mixer("diql", n, S, A) is None
    assert isinstance(build_mixer("vdn", n, S, A), VDNMixer)
    assert isinstance(build_mixer("ddn", n, S, A), DDNMixer)
    assert isinstance(build_mixer("dmix", n, S, A).mean_mixer, QMixer)
    with pytest.raises(KeyError):
        build_mixer("nope", n, S, A)

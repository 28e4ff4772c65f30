import itertools

import pytest
import torch
import torch.nn.functional as F

from dfac.mixers import DDNMixer, MeanShapeMixer, QattenWeight, QMixer, QPLEXMixer, VDNMixer, build_mixer, mixer_aux_loss

n, A, S, N = 3, 4, 6, 8


def test_ddn_is_mean_shape_with_vdn():
    z = torch.randn(2, 5, n, N)
    s = torch.randn(2, 5, S)
    assert torch.allclose(DDNMixer()(z, s), MeanShapeMixer(VDNMixer())(z, s), atol=1e-5)


@pytest.mark.parametrize("alg,attention", [("dmix", False), ("dplex", False), ("dplex", True)])
def test_mean_shape_mixture_reproduces_expected_value_mixer_mean(alg, attention):
    torch.manual_seed(0)
    mixer = build_mixer(alg, n, S, A, qplex_attention=attention, unit_dim=2)
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


@pytest.mark.parametrize("alg,attention", [("ddn", False), ("dmix", False), ("dplex", False), ("dplex", True)])
def test_igm_greedy_joint_action_is_per_agent_greedy(alg, attention):
    torch.manual_seed(2)
    mixer = build_mixer(alg, n, S, A, qplex_attention=attention, unit_dim=2)
    for trial in range(10):
        z = torch.randn(n, A, N) * 2  # per-agent quantile samples Z_i(a, tau_k)
        s = torch.randn(S)
        per_agent = tuple(z.mean(-1).argmax(-1).tolist())
        assert _joint_greedy(alg, mixer, z, s) == per_agent


@pytest.mark.parametrize("attention", [False, True])
def test_qplex_equals_value_at_greedy_actions(attention):
    # at the per-agent greedy actions the advantages vanish: Q_jt = sum_i w_i max Q_i + b
    torch.manual_seed(3)
    m = QPLEXMixer(n, S, A, attention=attention, unit_dim=2)
    q = torch.randn(4, 2, n, A)
    s = torch.randn(4, 2, S)
    greedy = q.argmax(-1)
    max_q = q.max(-1).values
    out = m(max_q, s, F.one_hot(greedy, A).float(), max_q)
    w, b = m.weights(s.reshape(-1, S))
    v = (w * max_q.reshape(-1, n)).sum(-1) + b.squeeze(-1)
    assert torch.allclose(out, v.view(4, 2), atol=1e-5)


def test_qatten_weights_and_regulariser():
    torch.manual_seed(4)
    att = QattenWeight(n, S, unit_dim=2, n_head=4, attend_reg_coef=1e-3)
    s = torch.randn(16, S)
    w, b, reg = att(s)
    assert w.shape == (16, n) and b.shape == (16, 1) and (w > 0).all()
    assert torch.allclose(w.sum(-1), torch.full((16,), 4.0), atol=1e-5)  # one softmax over the agents per head
    # the weights depend on the agents' own features (the first n * unit_dim state entries)
    s2 = s.clone()
    s2[:, :2] += 3.0
    assert not torch.allclose(att(s2)[0], w)
    reg.backward()
    assert reg.item() > 0 and att.keys[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        QattenWeight(n, S, unit_dim=3)  # 3 agents x 3 features > 6 state entries
    dplex = build_mixer("dplex", n, S, A, qplex_attention=True, unit_dim=2)
    z = torch.randn(2, 5, n, N)
    dplex(z, torch.randn(2, 5, S), F.one_hot(torch.randint(0, A, (2, 5, n)), A).float(), z.mean(-1))
    assert mixer_aux_loss(dplex).item() > 0 and mixer_aux_loss(build_mixer("dplex", n, S, A)) == 0.0


def test_build_mixer_kinds():
    assert build_mixer("iql", n, S, A) is None and build_mixer("diql", n, S, A) is None
    assert isinstance(build_mixer("vdn", n, S, A), VDNMixer)
    assert isinstance(build_mixer("ddn", n, S, A), DDNMixer)
    assert isinstance(build_mixer("dmix", n, S, A).mean_mixer, QMixer)
    with pytest.raises(KeyError):
        build_mixer("nope", n, S, A)

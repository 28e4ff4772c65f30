import numpy as np
import torch
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from tdil.baselines import AIRLDiscriminator, GAILDiscriminator, PWILReward, behaviour_cloning
from tdil.networks import Actor, TwinCritic, polyak


def test_tanh_gaussian_log_prob_matches_change_of_variables():
    torch.manual_seed(0)
    actor = Actor(3, 2, hidden=16)
    obs = torch.randn(64, 3)
    a, logp = actor.sample(obs)
    mu, log_std = actor(obs)
    dist = TransformedDistribution(Normal(mu, log_std.exp()), [TanhTransform(cache_size=1)])
    ref = dist.log_prob(a.clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1)
    assert torch.allclose(logp, ref, atol=2e-3)


def test_log_prob_of_given_actions_matches_the_sampled_log_prob():
    torch.manual_seed(0)
    actor = Actor(3, 2, hidden=16)
    obs = torch.randn(64, 3)
    a, logp = actor.sample(obs)
    keep = (a.abs() < 0.99).all(-1)  # away from the clipping at |a| = 1 - eps
    assert keep.sum() > 30
    assert torch.allclose(actor.log_prob(obs, a)[keep], logp[keep], atol=1e-3)


def test_airl_shaping_telescopes_and_a_discriminator_step_lowers_its_loss():
    torch.manual_seed(0)
    gamma = 0.9
    d = AIRLDiscriminator(3, gamma, hidden=16)
    s = torch.randn(11, 3)  # one trajectory s_0 .. s_10
    zeros = torch.zeros(10)
    f = d.f(s[:-1], s[1:], zeros)
    disc = gamma ** torch.arange(10.0)
    # sum_t gamma^t f(s_t, s_t+1) = sum_t gamma^t g(s_t) + gamma^T h(s_T) - h(s_0): the potential h only shapes
    with torch.no_grad():
        rhs = (disc * d.g(s[:-1]).squeeze(-1)).sum() + gamma**10 * d.h(s[-1:]).squeeze() - d.h(s[:1]).squeeze()
    assert torch.allclose((disc * f).sum(), rhs, atol=1e-5)
    # a terminal transition drops gamma h(s')
    ones = torch.ones(10)
    assert torch.allclose(d.f(s[:-1], s[1:], ones), (d.g(s[:-1]) - d.h(s[:-1])).squeeze(-1))
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    exp = (torch.randn(64, 3), torch.randn(64, 3), torch.zeros(64), torch.full((64,), -1.0))
    agent = (torch.randn(64, 3) + 2, torch.randn(64, 3) + 2, torch.zeros(64), torch.full((64,), 0.5))
    before = d.loss(exp, agent)
    opt.zero_grad()
    before.backward()
    opt.step()
    assert d.loss(exp, agent) < before


def test_polyak_interpolates():
    a, b = TwinCritic(2, 1, 8), TwinCritic(2, 1, 8)
    pa = [p.clone() for p in a.parameters()]
    polyak(a, b, 0.25)
    for p0, p1, pb in zip(pa, a.parameters(), b.parameters()):
        assert torch.allclose(p1, 0.75 * p0 + 0.25 * pb)


def test_pwil_reward_is_maximal_on_the_expert_trajectory():
    rng = np.random.default_rng(0)
    obs, act = rng.normal(size=(50, 3)), rng.uniform(-1, 1, (50, 1))
    pw = PWILReward(obs, act, episode_len=50)
    on = [pw(o, a) for o, a in zip(obs, act)]
    assert np.allclose(on, 5.0) and np.allclose(pw.weights, 0.0, atol=1e-9)  # every expert atom used exactly
    pw.reset()
    off = [pw(o + 1.0, a) for o, a in zip(obs, act)]
    assert max(off) < 5.0 and np.mean(off) < 0.5 * np.mean(on)


def test_gail_discriminator_step_lowers_loss_and_bc_fits_demo():
    torch.manual_seed(0)
    d = GAILDiscriminator(3, 1, hidden=32)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    e_o, e_a, a_o, a_a = torch.randn(64, 3), torch.rand(64, 1), torch.randn(64, 3) + 2, torch.rand(64, 1)
    before = d.loss(e_o, e_a, a_o, a_a, grad_penalty=0.0)
    opt.zero_grad()
    before.backward()
    opt.step()
    assert d.loss(e_o, e_a, a_o, a_a, grad_penalty=0.0) < before
    actor = Actor(3, 1, hidden=32)
    target = torch.tanh(e_o[:, :1])
    losses = behaviour_cloning(actor, e_o, target, steps=300, lr=3e-3, batch=32)
    assert losses[-1] < 0.1 * losses[0]

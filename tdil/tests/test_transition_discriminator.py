import numpy as np
import torch

from tdil.envs import make_env
from tdil.transition_discriminator import (
    W_EASY,
    W_HARD,
    W_VALID,
    TransitionDiscriminator,
    discriminator_loss,
    expert_proximity_reward,
    transition_pairs,
)


def test_sampler_builds_the_papers_valid_and_non_valid_pairs():
    b, d = 8, 3
    s = torch.randn(b, d)
    s_next = torch.randn(b, d)
    first, second, label, weight = transition_pairs(s, s_next)
    assert first.shape == second.shape == (3 * b, d) and label.shape == weight.shape == (3 * b,)
    # valid: (s_t, s_{t+1})
    assert torch.equal(first[:b], s) and torch.equal(second[:b], s_next)
    assert torch.all(label[:b] == 1) and torch.allclose(weight[:b], torch.tensor(W_VALID))
    # easy negatives: (s_t, s'_k) with k != t, every other next state used once
    assert torch.equal(first[b : 2 * b], s)
    for t in range(b):
        k = [j for j in range(b) if torch.equal(second[b + t], s_next[j])]
        assert k and k[0] != t
    assert sorted(tuple(x.tolist()) for x in second[b : 2 * b]) == sorted(tuple(x.tolist()) for x in s_next)
    assert torch.all(label[b : 2 * b] == 0) and torch.allclose(weight[b : 2 * b], torch.tensor(W_EASY))
    # hard negatives: the reversed transition (s_{t+1}, s_t)
    assert torch.equal(first[2 * b :], s_next) and torch.equal(second[2 * b :], s)
    assert torch.all(label[2 * b :] == 0) and torch.allclose(weight[2 * b :], torch.tensor(W_HARD))
    assert (W_VALID, W_EASY, W_HARD) == (0.99, 0.01, 1.0)


def test_pairwise_equals_direct_evaluation():
    torch.manual_seed(0)
    disc = TransitionDiscriminator(4, hidden=32)
    s, e = torch.randn(5, 4), torch.randn(7, 4)
    p = disc.pairwise(s, e)
    direct = torch.stack([disc(s[i].expand(7, 4), e) for i in range(5)])
    assert torch.allclose(p, direct, atol=1e-6)
    r = expert_proximity_reward(disc, s, e, chunk=2)
    assert torch.allclose(r, direct.sum(1), atol=1e-5)


def test_one_discriminator_update_lowers_its_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    disc = TransitionDiscriminator(3, hidden=64)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-3)
    s, s_next = torch.randn(64, 3), torch.randn(64, 3)
    before = discriminator_loss(disc, s, s_next)
    opt.zero_grad()
    before.backward()
    opt.step()
    after = discriminator_loss(disc, s, s_next)
    assert after.item() < before.item()


def test_loss_gradient_matches_finite_differences():
    torch.manual_seed(0)
    disc = TransitionDiscriminator(2, hidden=8).double()
    s, s_next = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    f = lambda: discriminator_loss(disc, s, s_next)  # noqa: E731
    w = disc.first.weight
    loss = f()
    (g,) = torch.autograd.grad(loss, w)
    eps = 1e-6
    for idx in [(0, 0), (3, 2), (7, 3)]:
        with torch.no_grad():
            w[idx] += eps
            up = f().item()
            w[idx] -= 2 * eps
            down = f().item()
            w[idx] += eps
        assert abs((up - down) / (2 * eps) - g[idx].item()) < 1e-4


def _chain_states(n):
    return torch.eye(n)  # one-hot states of an n-state chain


def test_reward_is_highest_on_expert_states_and_decreases_with_distance_on_a_chain():
    """Chain MDP: from x the agent can move to x+1 or x+2. The expert visits 20..24."""
    torch.manual_seed(0)
    n = 30
    states = _chain_states(n)
    src = torch.tensor([x for x in range(n - 2) for _ in (1, 2)])
    dst = torch.tensor([x + k for x in range(n - 2) for k in (1, 2)])
    disc = TransitionDiscriminator(n, hidden=64)
    opt = torch.optim.Adam(disc.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        i = torch.randint(0, len(src), (128,), generator=g)
        loss = discriminator_loss(disc, states[src[i]], states[dst[i]])
        opt.zero_grad()
        loss.backward()
        opt.step()
    expert = states[20:25]
    r = expert_proximity_reward(disc, states, expert)
    # exact count of expert states reachable in one step: 19 -> {20,21}: 2, 18 -> {20}: 1, 17: 0
    on_expert = r[20:23]  # 20, 21, 22 each reach two expert states
    assert on_expert.min() > 1.5
    assert r.max() <= on_expert.max() + 0.2  # nothing beats the expert states
    assert r[19] > r[18] + 0.5 > r[17] + 1.0  # decreases with distance to the expert set
    assert r[:17].max() < 0.5 and r[26:].max() < 0.5  # far states get (almost) nothing


def test_discriminator_learns_pendulum_dynamics_direction():
    """A short run crosses a bar: held-out valid vs reversed Pendulum transitions are separated."""
    torch.manual_seed(0)
    env = make_env("Pendulum-v1")
    rng = np.random.default_rng(0)
    s, s2 = [], []
    obs, _ = env.reset(seed=0)
    for t in range(1200):
        nxt, *_ = env.step(rng.uniform(-2, 2, (1,)).astype(np.float32))
        s.append(obs), s2.append(nxt)
        obs = nxt
        if t % 200 == 199:
            obs, _ = env.reset(seed=t)
    s, s2 = torch.as_tensor(np.array(s)), torch.as_tensor(np.array(s2))
    train, test = slice(0, 1000), slice(1000, 1200)
    disc = TransitionDiscriminator(3, hidden=64)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        i = torch.randint(0, 1000, (256,), generator=g)
        loss = discriminator_loss(disc, s[train][i], s2[train][i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        valid = disc(s[test], s2[test])
        reversed_ = disc(s2[test], s[test])
    acc = 0.5 * ((valid > 0.5).float().mean() + (reversed_ < 0.5).float().mean())
    assert acc > 0.85, acc

"""DAgger learns to imitate the expert from pixels; PPO's pieces behave."""
import numpy as np
import pytest
import torch

from driveenv_nerf.agents import (DAggerConfig, PixelPolicy, PPOConfig, PurePursuitExpert, agent_seed, dagger, gaussian_logp,
                                  make_policy, ppo)
from driveenv_nerf.envs import BatchDrive, EnvConfig, SimWorld

CFG = EnvConfig(obs_width=16, obs_height=12, max_steps=60)


def test_dagger_fits_expert_labels(course):
    torch.manual_seed(0)
    expert = PurePursuitExpert(course, CFG.wheelbase, CFG.max_steer)
    env = BatchDrive(course, SimWorld(course, CFG), CFG, 8, seed=0)
    pol = PixelPolicy((12, 16))
    logs = []
    X, Y = dagger(env, expert, pol, DAggerConfig(iterations=2, n_envs=8, steps_per_iter=30, epochs=15, batch_size=64),
                  on_iteration=lambda it, p, D, log: logs.append(log))
    assert [l["iteration"] for l in logs] == [0, 1] and logs[1]["dataset"] == 2 * 8 * 30 == len(X)
    with torch.no_grad():
        mse = torch.mean((pol(X) - torch.as_tensor(Y)) ** 2).item()
    assert mse < 0.5 * np.var(Y)  # the pixel policy explains most of the expert's steering


def test_gaussian_logp_matches_torch():
    mean, log_std, a = torch.randn(7, 1), torch.full((1,), -0.3), torch.randn(7, 1)
    ref = torch.distributions.Normal(mean, log_std.exp()).log_prob(a).sum(-1)
    assert torch.allclose(gaussian_logp(mean, log_std, a), ref, atol=1e-6)


def test_ppo_updates_policy_and_logs(course):
    torch.manual_seed(0)
    env = BatchDrive(course, SimWorld(course, CFG), CFG, 4, seed=0)
    pol = PixelPolicy((12, 16))
    before = [p.detach().clone() for p in pol.parameters()]
    logs = []
    ppo(env, pol, PPOConfig(updates=2, n_envs=4, n_steps=16, epochs=2, minibatches=2), on_update=lambda u, p, o, log: logs.append(log))
    assert len(logs) == 2 and np.isfinite(logs[-1]["value_loss"])
    assert any((a - b).abs().max() > 0 for a, b in zip(before, pol.parameters()))


def test_agents_do_not_depend_on_global_random_state(course):
    """An agent's initial weights and its PPO training depend on its own seed only, not on what an earlier stage
    (the NeRF) drew from the global RNG (the defect: another NeRF grid or a resumed run trained other agents)."""
    def train_agent(consume: int):
        torch.manual_seed(123)
        torch.rand(consume)  # an unrelated stage's draws
        np.random.rand(consume)
        pol = make_policy((12, 16), agent_seed(0, 4))
        init = [p.detach().clone() for p in pol.parameters()]
        state = torch.get_rng_state()
        env = BatchDrive(course, SimWorld(course, CFG), CFG, 2, seed=0)
        ppo(env, pol, PPOConfig(updates=1, n_envs=2, n_steps=8, epochs=1, minibatches=2), seed=agent_seed(0, 14))
        assert torch.equal(torch.get_rng_state(), state)  # the global torch RNG was left alone
        return init, [p.detach().clone() for p in pol.parameters()]
    (i0, t0), (i1, t1) = train_agent(0), train_agent(1000)
    assert all(torch.equal(a, b) for a, b in zip(i0, i1)) and all(torch.equal(a, b) for a, b in zip(t0, t1))
    other = make_policy((12, 16), agent_seed(0, 1))
    assert not all(torch.equal(a, b) for a, b in zip(i0, other.parameters()))  # agents get different seeds


def test_agent_seeds_give_other_agents_and_seed_0_is_the_old_draw():
    """train.py --agent-seeds k: seed 0 is the hash of (seed, offset) that runs before the option used; other seeds
    give other seeds for every agent, hence other initial weights."""
    for offset in (1, 4, 14):
        assert agent_seed(0, offset, 0) == int(np.random.SeedSequence([0, offset]).generate_state(1)[0])
        assert len({agent_seed(0, offset, k) for k in range(5)}) == 5
    w = [list(make_policy((12, 16), agent_seed(0, 1, k)).parameters()) for k in (0, 1)]
    assert not all(torch.equal(a, b) for a, b in zip(*w))
    with pytest.raises(ValueError):
        agent_seed(0, 1, -1)

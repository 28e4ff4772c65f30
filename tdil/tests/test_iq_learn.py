"""IQ-Learn (tdil/iq_learn.py): the chi^2 inverse soft-Q objective, its shapes, one update on a fixed batch,
seeded determinism and checkpoint/resume inside the shared imitation loop."""
import dataclasses

import pytest
import torch

from tdil.config import Config
from tdil.imitation import Imitator
from tdil.iq_learn import IQConfig, IQLearn

TINY = Config(hidden=16, batch_size=32, warmup_steps=50, steps=120, eval_every=60, eval_episodes=1, checkpoint_every=0)


def _batch(n, obs_dim=3, act_dim=2, shift=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, obs_dim, generator=g) + shift, torch.rand(n, act_dim, generator=g) * 2 - 1,
            torch.randn(n, obs_dim, generator=g) + shift, torch.zeros(n))


def _loss(iq, policy, expert, seed=1):
    torch.manual_seed(seed)  # the same a ~ pi samples for V(s), V(s') each time
    return iq.iq_loss(policy, expert)


@pytest.mark.parametrize("value_loss", ["value", "v0", "value_expert"])
def test_shapes_and_the_loss_is_the_sum_of_its_named_terms(value_loss):
    torch.manual_seed(0)
    iq = IQLearn(3, 2, IQConfig(hidden=16, value_loss=value_loss))
    policy, expert = _batch(24), _batch(16, shift=1.0, seed=1)
    loss, logs = _loss(iq, policy, expert)
    assert loss.shape == ()
    assert logs["iq_loss"] == pytest.approx(logs["iq_expert_term"] + logs["iq_value_term"] + logs["iq_chi2_term"], rel=1e-5)
    assert logs["iq_chi2_term"] >= 0
    assert iq.value(iq.critic, policy[0]).shape == iq.sample_q(iq.critic, policy[0]).shape == (24,)
    assert iq.recovered_reward(*expert).shape == (16,)
    assert iq.actor.deterministic(policy[0]).shape == (24, 2)


def test_chi2_term_matches_the_formula_and_expert_term_is_minus_the_expert_reward():
    torch.manual_seed(0)
    cfg = IQConfig(hidden=16, regularize=False, chi2_alpha=0.25)
    iq = IQLearn(3, 2, cfg)
    policy, expert = _batch(8), _batch(8, seed=1)
    _, logs = _loss(iq, policy, expert)
    torch.manual_seed(1)  # the same draws as inside iq_loss (V(s') is computed first)
    with torch.no_grad():
        v_next = iq.value(iq.critic_target, torch.cat([policy[2], expert[2]]))
        r_e = iq.critic(expert[0], expert[1]) - cfg.gamma * v_next[8:]
    assert logs["iq_expert_term"] == pytest.approx(-r_e.mean().item(), rel=1e-5)
    assert logs["iq_chi2_term"] == pytest.approx((r_e**2).mean().item() / (4 * 0.25), rel=1e-5)


def test_chi2_term_on_policy_samples_uses_its_own_action_draw():
    """regularize: the chi^2 term takes Q(s, a~pi) - gamma V(s') at replay states with an action drawn
    independently of the one inside V(s) (official `sampleQ` vs `getV`)."""
    torch.manual_seed(0)
    cfg = IQConfig(hidden=16, regularize=True, chi2_alpha=0.5)
    iq = IQLearn(3, 2, cfg)
    policy, expert = _batch(8), _batch(8, seed=1)
    _, logs = _loss(iq, policy, expert)
    torch.manual_seed(1)  # replay the draws of iq_loss in order: V(s'), V(s), then Q(s, a~pi) at replay states
    with torch.no_grad():
        y = cfg.gamma * iq.value(iq.critic_target, torch.cat([policy[2], expert[2]]))
        a_v, logp_v = iq.actor.sample(torch.cat([policy[0], expert[0]]))
        a_q, _ = iq.actor.sample(policy[0])
        r_e = iq.critic(expert[0], expert[1]) - y[8:]
        r_pi = iq.critic(policy[0], a_q) - y[:8]
        r_pi_same_draw = iq.critic(policy[0], a_v[:8]) - y[:8]
    expected = (torch.cat([r_e, r_pi]) ** 2).mean().item() / (4 * 0.5)
    assert logs["iq_chi2_term"] == pytest.approx(expected, rel=1e-5)
    assert logs["iq_chi2_term"] != pytest.approx((torch.cat([r_e, r_pi_same_draw]) ** 2).mean().item() / 2, rel=1e-3)


def test_official_networks_orthogonal_init_and_squashed_log_std():
    torch.manual_seed(0)
    iq = IQLearn(3, 2, IQConfig(hidden=16))
    assert iq.actor.squash_log_std and not IQLearn(3, 2, IQConfig(hidden=16, official_networks=False)).actor.squash_log_std
    for m in [*iq.critic.modules(), *iq.actor.modules()]:
        if isinstance(m, torch.nn.Linear):
            w = m.weight if m.weight.shape[0] <= m.weight.shape[1] else m.weight.T
            assert torch.allclose(w @ w.T, torch.eye(len(w)), atol=1e-5) and torch.all(m.bias == 0)
    obs = torch.randn(64, 3) * 10
    with torch.no_grad():  # huge pre-activations: log sigma stays inside [-5, 2]
        iq.actor.net[-1].weight.mul_(1e3)
    log_std = iq.actor(obs)[1]
    assert log_std.min() >= -5.0 and log_std.max() <= 2.0 and log_std.min() < -4.9 and log_std.max() > 1.9
    with torch.no_grad():  # a zero pre-activation maps to the middle of [-5, 2] (a clamp would give 0)
        iq.actor.net[-1].weight.zero_()
    assert torch.allclose(iq.actor(obs)[1], torch.full((64, 2), -1.5))


def test_one_critic_update_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    iq = IQLearn(3, 2, IQConfig(hidden=32, critic_lr=1e-3))
    policy, expert = _batch(64), _batch(64, shift=1.0, seed=1)
    before, _ = _loss(iq, policy, expert)
    iq.critic_opt.zero_grad()
    before.backward()
    iq.critic_opt.step()
    after, _ = _loss(iq, policy, expert)
    assert after.item() < before.item()


def test_recovered_reward_ranks_expert_pairs_above_replay_pairs_after_training():
    """Maximising J(Q) raises Q - gamma V' on expert (s, a) and lowers V on replay states: after some critic
    steps on fixed batches the implicit reward separates expert pairs from other pairs."""
    torch.manual_seed(0)
    iq = IQLearn(3, 2, IQConfig(hidden=32, critic_lr=1e-3))
    policy, expert = _batch(128), _batch(128, shift=1.5, seed=1)
    expert = (expert[0], torch.full_like(expert[1], 0.8), expert[2], expert[3])
    for _ in range(200):
        iq.update_critic(policy, expert)
    r_e, r_p = iq.recovered_reward(*expert).mean(), iq.recovered_reward(*policy).mean()
    assert r_e > r_p + 0.5, (r_e, r_p)


def test_bad_value_loss_is_refused():
    with pytest.raises(ValueError, match="value loss"):
        IQLearn(3, 2, IQConfig(value_loss="nope"))


def _params(im):
    return torch.cat([p.detach().flatten() for p in [*im.agent.actor.parameters(), *im.agent.critic.parameters()]])


def test_iq_runs_are_seeded_and_resume_from_a_checkpoint(demo, tmp_path):
    runs = []
    for s in (0, 0, 1):
        runs.append(Imitator("iq", TINY, demo, s))
        runs[-1].train(100)
    a, b, c = runs
    assert torch.equal(_params(a), _params(b)) and a.result.returns == b.result.returns
    assert not torch.equal(_params(a), _params(c))
    logs = a.update()
    assert {"iq_loss", "iq_reward_expert", "actor_loss"} <= set(logs)
    a.save(tmp_path / "ck.pt")
    d = Imitator("iq", TINY, demo, 0)
    d.load(tmp_path / "ck.pt")
    assert torch.equal(_params(a), _params(d))
    assert torch.equal(torch.cat([p.flatten() for p in a.agent.critic_target.parameters()]),
                       torch.cat([p.flatten() for p in d.agent.critic_target.parameters()]))
    d.train(TINY.steps)
    assert d.t == TINY.steps and len(d.result.returns) == 2


def test_iq_config_fields_reach_the_agent(demo):
    cfg = dataclasses.replace(TINY, iq_value_loss="v0", iq_chi2_alpha=0.25, iq_actor_lr=1e-4, iq_log_alpha=-2.0)
    ag = Imitator("iq", cfg, demo, 0).agent
    assert ag.cfg.value_loss == "v0" and ag.cfg.chi2_alpha == 0.25 and ag.alpha.item() == pytest.approx(torch.e**-2.0)
    assert ag.actor_opt.param_groups[0]["lr"] == 1e-4 and ag.critic_opt.param_groups[0]["lr"] == cfg.lr

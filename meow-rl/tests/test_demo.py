"""MultiGoal demo measurements: the mode counter, goal directions, the soft-optimal reference."""
from dataclasses import replace

import jax
import numpy as np
import pytest

from meow_rl.config import Config, MultiGoalDemo
from meow_rl.demo import (action_grid, action_log_density, count_modes, densities_at_states, format_fractions,
                          format_modes, goal_direction_fractions, mode_report, report_table, soft_optimal_goals_reached,
                          soft_value, train_multigoal)
from meow_rl.envs import multigoal
from meow_rl.meow import MEowHParams
from meow_rl.soft_value_iteration import multigoal_q, soft_optimal_log_pi, soft_optimal_value, soft_value_iteration

import jax.numpy as jnp


def _gauss(A1, A2, cx, cy, s=0.15):
    return np.exp(-((A1 - cx) ** 2 + (A2 - cy) ** 2) / (2 * s**2))


def test_count_modes_finds_four_or_one():
    A1, A2, _ = action_grid(101)
    four = sum(_gauss(A1, A2, *c) for c in ((0.6, 0), (-0.6, 0), (0, 0.6), (0, -0.6)))
    modes = count_modes(four, (A1, A2))
    assert len(modes) == 4
    assert sorted((round(x, 1), round(y, 1)) for x, y in modes) == [(-0.6, 0.0), (0.0, -0.6), (0.0, 0.6), (0.6, 0.0)]
    assert len(count_modes(_gauss(A1, A2, 0.3, -0.2, 0.4), (A1, A2))) == 1
    # a bump below 5 % of the peak is not a mode
    assert len(count_modes(_gauss(A1, A2, 0.5, 0) + 0.01 * _gauss(A1, A2, -0.5, 0), (A1, A2))) == 1


def test_goal_direction_fractions():
    a = np.array([[0.9, 0.1], [-0.5, 0.2], [0.1, 0.7], [0.2, -0.3], [0.8, -0.5]])
    np.testing.assert_allclose(goal_direction_fractions(a), [0.4, 0.2, 0.2, 0.2])
    np.testing.assert_allclose(goal_direction_fractions(a, [0.1, 0.2, 0.3, 0.1, 0.3]), [0.4, 0.2, 0.3, 0.1])


def test_table_formats():
    assert format_modes([(0.5, 0.0), (-0.25, 0.125)]) == "2 ((0.50,0.00), (-0.25,0.12))"
    assert format_modes([(0.0, 0.0)] * 7) == "7 (" + ", ".join(["(0.00,0.00)"] * 6) + " ...)"
    assert format_fractions([0.25, 0.5, 0.125, 0.125]) == "0.25 / 0.50 / 0.12 / 0.12"


def test_soft_value_iteration_is_a_fixed_point_and_four_modal():
    alpha, gamma = 2.5, 0.9
    opt = soft_value_iteration(alpha, gamma, state_step=0.5, n_actions=21, iters=120)
    v = opt.v
    assert opt.residual < 1e-3
    np.testing.assert_allclose(v, v.T, atol=1e-3)  # the toy is symmetric under x <-> y and x -> -x
    np.testing.assert_allclose(v, v[::-1], atol=1e-3)
    # Bellman fixed point at a few states, recomputed with a finer action grid (Riemann sum vs V*)
    s = jnp.array([[0.0, 0.0], [2.0, -1.0], [-4.5, 0.5]])
    g = (np.arange(81) + 0.5) / 81 * 2 - 1
    A = jnp.asarray(np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2), jnp.float32)
    q = multigoal_q(jnp.asarray(v), s, A, gamma=gamma, lo=opt.states[0], h=0.5)
    v_fine = alpha * (jax.scipy.special.logsumexp(q / alpha, axis=1) + np.log((2 / 81) ** 2))
    idx = [(14, 14), (18, 12), (5, 15)]
    np.testing.assert_allclose(np.asarray(v_fine), [v[i, j] for i, j in idx], atol=0.1)
    # pi* at the origin: four modes, one towards each goal, each a quarter of the mass
    A1, A2, grid = action_grid(81)
    p = np.exp(soft_optimal_log_pi(opt, alpha, gamma, (0.0, 0.0), grid))
    np.testing.assert_allclose(p.sum(), 1.0, atol=1e-5)
    modes = count_modes(p.reshape(A1.shape), (A1, A2))
    assert len(modes) == 4 and all(min(abs(x), abs(y)) < 0.05 and max(abs(x), abs(y)) > 0.4 for x, y in modes)
    np.testing.assert_allclose(goal_direction_fractions(np.asarray(grid)[np.random.default_rng(0).choice(len(p), 20000, p=p / p.sum())]),
                               0.25, atol=0.02)
    np.testing.assert_allclose(goal_direction_fractions(grid, p), 0.25, atol=0.02)  # pi*'s own mass per direction
    # rollouts of pi* itself from the origin end at every goal, about a quarter each
    counts, traj = soft_optimal_goals_reached(opt, alpha, gamma, multigoal(), 400, jax.random.PRNGKey(0), 60)
    assert traj.shape == (400, 61, 2) and np.all(traj[:, 0] == 0.0)
    assert counts.sum() >= 380 and np.all(np.abs(counts / counts.sum() - 0.25) < 0.08), counts


@pytest.fixture(scope="module")
def tiny_multigoal():
    """MEow and SAC trained once on MultiGoal (300 steps, seeds 1 and 2), shared by the two tests below
    (they only read the trained states; rollouts/rollout_steps do not enter the training)."""
    demo = MultiGoalDemo(steps=300, warmup=100, rollouts=8, rollout_steps=5)
    cfg = Config(multigoal=demo, batch_size=32, meow=MEowHParams(hidden=16, shift_hidden=16))
    cfg = replace(cfg, sac=replace(cfg.sac, hidden=16))
    return demo, train_multigoal(cfg, seeds=(1, 2))


def test_mode_report_runs_on_a_tiny_training(tiny_multigoal):
    demo, res = tiny_multigoal
    rows, ref = mode_report(res, demo, (1, 2), jax.random.PRNGKey(0), n_samples=100, fit_steps=20, state_step=1.0,
                            n_actions=11, iters=40)
    assert [(r["algo"], r["seed"]) for r in rows] == [("meow", 1), ("meow", 2), ("sac", 1), ("sac", 2), ("fit", "-")]
    for r in rows:
        np.testing.assert_allclose(r["density"].sum(), 1.0, atol=1e-6)
        np.testing.assert_allclose(r["directions"].sum(), 1.0, atol=1e-6)
        assert 0.0 <= r["tv_to_optimum"] <= 1.0 and len(r["modes"]) >= 1
        assert r["goals"] is None if r["algo"] == "fit" else (r["goals"].sum() <= 8 and r["traj"].shape == (8, 6, 2))
    assert ref["goals"].sum() <= 8
    assert np.isfinite(rows[0]["v0"]) and np.isnan(rows[2]["v0"])
    assert "soft-optimal" in report_table(rows, ref)


def test_densities_at_states_measure_each_state(tiny_multigoal):
    demo, res = tiny_multigoal  # MEow trained exactly as train_multigoal(cfg, seeds=(1, 2), algos=("meow",)) would
    res = res["meow"]
    states = [(0.0, 0.0), (1.5, 1.5)]
    # n_samples as in mode_report above (the sampled fractions are only checked to sum to 1): the same sampling shapes
    rows = densities_at_states(res, demo, (1, 2), states, jax.random.PRNGKey(0), n_samples=100, state_step=0.5,
                               n_actions=21, iters=60)
    assert [(r["state"], r["seed"]) for r in rows] == [(s, k) for s in states for k in ("pi*", 1, 2)]
    for r in rows:
        np.testing.assert_allclose(r["density"].sum(), 1.0, atol=1e-6)
        np.testing.assert_allclose(r["directions"].sum(), 1.0, atol=1e-6)
        assert 0.0 <= r["tv_to_optimum"] <= 1.0 and len(r["modes"]) >= 1 and np.isfinite(r["v"])
    # the state is honoured: MEow's density and V at (1.5, 1.5) are not those at the origin, and they are the
    # flow's own at that state
    st = jax.tree_util.tree_map(lambda x: x[0], res["states"])
    assert np.abs(rows[1]["density"] - rows[4]["density"]).max() > 1e-6 and rows[1]["v"] != rows[4]["v"]
    _, _, grid = action_grid()
    logp = np.asarray(action_log_density("meow", res["hp"], st, grid, (1.5, 1.5)), np.float64)
    np.testing.assert_allclose(rows[4]["density"].ravel(), np.exp(logp - logp.max()) / np.exp(logp - logp.max()).sum(),
                               rtol=1e-5, atol=1e-12)
    assert rows[4]["v"] == soft_value("meow", res["hp"], st, (1.5, 1.5))
    # pi*: a quarter of the mass per goal direction at the origin; between the +x and +y goals most goes to those two
    np.testing.assert_allclose(rows[0]["directions"], 0.25, atol=0.02)
    assert rows[3]["directions"][[0, 2]].sum() > 0.8 and len(rows[3]["modes"]) == 2


def test_soft_optimal_value_interpolates_the_grid():
    opt = soft_value_iteration(2.5, 0.9, state_step=1.0, n_actions=11, iters=30)
    i = list(opt.states).index(2.0)
    assert soft_optimal_value(opt, (2.0, -3.0)) == pytest.approx(float(opt.v[i, i - 5]), abs=1e-4)
    mid = soft_optimal_value(opt, (2.5, -3.0))
    assert mid == pytest.approx(0.5 * (opt.v[i, i - 5] + opt.v[i + 1, i - 5]), abs=1e-4)

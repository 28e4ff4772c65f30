"""Multi-modality demo on the 2-D multi-goal toy: action densities at the origin, goals reached."""
from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np

from .envs import MULTIGOAL_GOALS, multigoal
from .flow import MEowFlow
from .loop import JaxTrainer
from .meow import make_meow
from .sac import Actor, make_sac, tanh_gaussian_log_prob


def train_multigoal(cfg, seed: int = 1):
    """Train MEow and SAC (same seed, budget) on MultiGoal; return their agent states and specs."""
    env = multigoal()
    demo = cfg.multigoal
    out = {}
    for algo in ("meow", "sac"):
        if algo == "meow":
            hp = replace(cfg.meow, gamma=demo.gamma, alpha=demo.meow_alpha, tau=demo.meow_tau,
                         sigma_min=demo.meow_sigma_min, sigma_max=demo.meow_sigma_max)
            agent = make_meow(hp, env.obs_dim, env.act_dim)
        else:
            hp = replace(cfg.sac, gamma=demo.gamma, alpha=demo.sac_alpha, autotune=False)
            agent = make_sac(hp, env.obs_dim, env.act_dim)
        tr = JaxTrainer(agent, env, batch_size=cfg.batch_size, buffer_size=demo.steps, warmup=demo.warmup,
                        chunk=demo.steps, eval_episodes=1)
        carry = tr.init(jax.random.PRNGKey(seed)[None])
        carry, _ = tr.run_chunk(carry)
        agent_state = jax.tree_util.tree_map(lambda x: x[0], carry["agent"])
        out[algo] = {"agent": agent, "state": agent_state, "hp": hp, "env": env}
    return out


def action_log_density(algo: str, hp, state, grid):
    """log pi(a | s = origin) on an (N, 2) grid of actions in (-1, 1)^2."""
    s = jnp.zeros((grid.shape[0], 2))
    if algo == "meow":
        flow = MEowFlow(2, hp.sigma_min, hp.sigma_max, hp.num_couplings, hp.hidden, hp.shift_hidden, hp.dropout)
        return flow.apply(state["params"], s, grid, method=MEowFlow.log_prob)
    mean, log_std = Actor(2, hp.hidden).apply(state["pi"], s)
    return tanh_gaussian_log_prob(mean, log_std, grid)


def goals_reached(agent, state, env, n: int, key, steps: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic rollouts from the origin; returns per-goal counts and the (n, T+1, 2) trajectories."""
    k_reset, k_act = jax.random.split(key)
    st, obs = jax.vmap(env.reset)(jax.random.split(k_reset, n))

    def body(c, k):
        st, obs, alive = c
        a = agent.act(state, obs, k, False)
        st, obs2, _, term = jax.vmap(env.step)(st, a)
        obs2 = jnp.where(alive[:, None], obs2, obs)
        return (st, obs2, alive & ~term), obs2

    (_, final, _), traj = jax.lax.scan(body, (st, obs, jnp.ones(n, bool)), jax.random.split(k_act, steps))
    d = np.linalg.norm(np.asarray(final)[:, None, :] - MULTIGOAL_GOALS[None], axis=-1)
    hit = d.min(axis=1) < 1.0
    counts = np.bincount(d.argmin(axis=1)[hit], minlength=len(MULTIGOAL_GOALS))
    traj = np.concatenate([np.asarray(obs)[None], np.asarray(traj)], axis=0).transpose(1, 0, 2)
    return counts, traj


def plot_multigoal(results, path, key, n_rollouts: int, rollout_steps: int = 30):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = np.linspace(-0.995, 0.995, 161)
    A1, A2 = np.meshgrid(g, g)
    grid = jnp.asarray(np.stack([A1.ravel(), A2.ravel()], axis=-1), jnp.float32)
    fig, axes = plt.subplots(2, 2, figsize=(10, 9))
    summary = {}
    for col, algo in enumerate(("meow", "sac")):
        r = results[algo]
        logp = np.asarray(action_log_density(algo, r["hp"], r["state"], grid)).reshape(A1.shape)
        ax = axes[0, col]
        ax.contourf(A1, A2, np.exp(logp - logp.max()), levels=30, cmap="viridis")
        ax.set_title(f"{algo.upper()}: pi(a | s=(0,0)) (normalised)")
        ax.set_xlabel("a_x"); ax.set_ylabel("a_y"); ax.set_aspect("equal")
        counts, traj = goals_reached(r["agent"], r["state"], r["env"], n_rollouts, key, rollout_steps)
        summary[algo] = counts
        ax = axes[1, col]
        for t in traj[:50]:
            ax.plot(t[:, 0], t[:, 1], lw=0.7, alpha=0.7)
        ax.scatter(MULTIGOAL_GOALS[:, 0], MULTIGOAL_GOALS[:, 1], c="red", s=80, marker="*")
        ax.set_xlim(-7, 7); ax.set_ylim(-7, 7); ax.set_aspect("equal")
        ax.set_title(f"{algo.upper()}: 50 rollouts; goals reached {counts.tolist()} of {n_rollouts}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return summary

"""Multi-modality demo on the 2-D multi-goal toy: action densities at the origin, measured modes,
goals reached, and the soft-optimal policy (soft value iteration) as the reference."""
from __future__ import annotations

from dataclasses import replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .envs import MULTIGOAL_GOALS, multigoal
from .flow import MEowFlow
from .loop import JaxTrainer
from .meow import make_meow
from .sac import Actor, make_sac, tanh_gaussian_log_prob
from .soft_value_iteration import soft_optimal_log_pi, soft_value_iteration

GOAL_NAMES = ("+x", "-x", "+y", "-y")  # order of MULTIGOAL_GOALS


def train_multigoal(cfg, seeds=(1,), algos=("meow", "sac")):
    """Train MEow and SAC (same seeds, budget; seeds vmapped) on MultiGoal; return per algorithm the
    agent, its hyperparameters and the agent states stacked along a leading seed axis."""
    env = multigoal()
    demo = cfg.multigoal
    out = {}
    for algo in algos:
        if algo == "meow":
            hp = replace(cfg.meow, gamma=demo.gamma, alpha=demo.meow_alpha, tau=demo.meow_tau,
                         sigma_min=demo.meow_sigma_min, sigma_max=demo.meow_sigma_max)
            agent = make_meow(hp, env.obs_dim, env.act_dim)
        else:
            hp = replace(cfg.sac, gamma=demo.gamma, alpha=demo.sac_alpha, autotune=False)
            agent = make_sac(hp, env.obs_dim, env.act_dim)
        tr = JaxTrainer(agent, env, batch_size=cfg.batch_size, buffer_size=demo.steps, warmup=demo.warmup,
                        chunk=demo.steps, eval_episodes=1)
        carry = tr.init(jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds)))
        carry, _ = tr.run_chunk(carry)
        out[algo] = {"agent": agent, "states": carry["agent"], "hp": hp, "env": env}
    return out


def action_grid(n: int = 161):
    g = np.linspace(-0.995, 0.995, n)
    A1, A2 = np.meshgrid(g, g)  # A1 varies along columns (a_x), A2 along rows (a_y)
    return A1, A2, jnp.asarray(np.stack([A1.ravel(), A2.ravel()], axis=-1), jnp.float32)


@partial(jax.jit, static_argnums=(0, 1))
def action_log_density(algo: str, hp, state, grid):
    """log pi(a | s = origin) on an (N, 2) grid of actions in (-1, 1)^2 (exact for both policies)."""
    s = jnp.zeros((grid.shape[0], 2))
    if algo == "meow":
        flow = MEowFlow(2, hp.sigma_min, hp.sigma_max, hp.num_couplings, hp.hidden, hp.shift_hidden, hp.dropout)
        return flow.apply(state["params"], s, grid, method=MEowFlow.log_prob)
    mean, log_std = Actor(2, hp.hidden).apply(state["pi"], s)
    return tanh_gaussian_log_prob(mean, log_std, grid)


def soft_value_at_origin(algo: str, hp, state) -> float:
    """MEow's exact soft value min_k V_k(0) (the quantity its Bellman target uses); NaN for SAC,
    whose V is only a Monte Carlo estimate."""
    if algo != "meow":
        return float("nan")
    flow = MEowFlow(2, hp.sigma_min, hp.sigma_max, hp.num_couplings, hp.hidden, hp.shift_hidden, hp.dropout)
    v1, v2 = flow.apply(state["params"], jnp.zeros((1, 2)), method=MEowFlow.v_over_alpha)
    return float(hp.alpha * jnp.minimum(v1, v2)[0])


def count_modes(density: np.ndarray, coords=None, rel: float = 0.05, radius: int = 8):
    """Modes of a density on a 2-D grid: points that are the maximum of their (2 radius + 1)^2
    neighbourhood and carry at least `rel` times the global maximum. Returns their positions
    (grid indices, or `coords[i]` when given as (A1, A2))."""
    from scipy.ndimage import maximum_filter

    peak = (density == maximum_filter(density, size=2 * radius + 1, mode="nearest")) & (density >= rel * density.max())
    idx = np.argwhere(peak)
    if coords is None:
        return [tuple(i) for i in idx]
    return [(float(coords[0][i, j]), float(coords[1][i, j])) for i, j in idx]


def goal_direction_fractions(actions: np.ndarray) -> np.ndarray:
    """Fraction of actions (N, 2) pointing towards each goal (+x, -x, +y, -y): the goal direction
    with the largest inner product, i.e. four 90-degree sectors centred on the goal axes."""
    dirs = np.asarray(MULTIGOAL_GOALS) / 5.0
    return np.bincount(np.argmax(actions @ dirs.T, axis=1), minlength=4) / len(actions)


def goals_reached(agent, state, env, n: int, key, steps: int):
    """n stochastic rollouts from the start distribution, each until it reaches a goal or `steps`
    steps; returns the per-goal counts (+x, -x, +y, -y) and the (n, steps+1, 2) trajectories."""
    obs, traj = _rollouts(agent, state, env, n, key, steps)
    final = traj[-1]
    d = np.linalg.norm(np.asarray(final)[:, None, :] - MULTIGOAL_GOALS[None], axis=-1)
    hit = d.min(axis=1) < 1.0
    counts = np.bincount(d.argmin(axis=1)[hit], minlength=len(MULTIGOAL_GOALS))
    traj = np.concatenate([np.asarray(obs)[None], np.asarray(traj)], axis=0).transpose(1, 0, 2)
    return counts, traj


@partial(jax.jit, static_argnums=(0, 2, 3, 5))
def _rollouts(agent, state, env, n, key, steps):
    k_reset, k_act = jax.random.split(key)
    st, obs = jax.vmap(env.reset)(jax.random.split(k_reset, n))

    def body(c, k):
        st, obs, alive = c
        a = agent.act(state, obs, k, False)
        st, obs2, _, term = jax.vmap(env.step)(st, a)
        obs2 = jnp.where(alive[:, None], obs2, obs)
        return (st, obs2, alive & ~term), obs2

    _, traj = jax.lax.scan(body, (st, obs, jnp.ones(n, bool)), jax.random.split(k_act, steps))
    return obs, traj


def mode_report(results, demo, seeds, key, n_samples: int = 4000, **svi):
    """Per algorithm and seed, measured at the origin s = (0, 0): the density's modes, the fraction
    of sampled actions per goal direction, the total-variation distance of the density to the
    soft-optimal pi*, and the goals reached by `demo.rollouts` rollouts of `demo.rollout_steps`
    steps. Returns (rows, reference) where reference describes pi* itself."""
    A1, A2, grid = action_grid()
    opt = soft_value_iteration(demo.meow_alpha, demo.gamma, **svi)  # svi: grid options (tests use a coarse one)
    logp_opt = soft_optimal_log_pi(opt, demo.meow_alpha, demo.gamma, (0.0, 0.0), grid)
    p_opt = np.exp(logp_opt).reshape(A1.shape)
    sector = np.argmax(np.asarray(grid) @ (MULTIGOAL_GOALS / 5.0).T, axis=1)
    mid = len(opt.states) // 2  # the state grid is symmetric: its middle point is the origin
    ref = {"density": p_opt, "modes": count_modes(p_opt, (A1, A2)), "residual": opt.residual, "v0": float(opt.v[mid, mid]),
           "v": opt.v, "states": opt.states,
           "directions": np.bincount(sector, weights=p_opt.ravel(), minlength=4)}
    rows = []
    for algo, r in results.items():
        n_seeds = jax.tree_util.tree_leaves(r["states"])[0].shape[0]
        for i in range(n_seeds):
            st = jax.tree_util.tree_map(lambda x: x[i], r["states"])
            logp = np.asarray(action_log_density(algo, r["hp"], st, grid), np.float64).reshape(A1.shape)
            p = np.exp(logp - logp.max())
            p /= p.sum()
            k_s, k_r = jax.random.split(jax.random.fold_in(key, i))
            samples = np.asarray(r["agent"].act(st, jnp.zeros((n_samples, 2)), k_s, False))
            counts, traj = goals_reached(r["agent"], st, r["env"], demo.rollouts, k_r, demo.rollout_steps)
            rows.append({"algo": algo, "seed": seeds[i], "density": p, "modes": count_modes(p, (A1, A2)),
                         "v0": soft_value_at_origin(algo, r["hp"], st),
                         "directions": goal_direction_fractions(samples), "tv_to_optimum": 0.5 * np.abs(p - p_opt).sum(),
                         "goals": counts, "traj": traj})
    return rows, ref


def plot_multigoal(rows, ref, path, n_traj: int = 50):
    """Top: pi(a | s=(0,0)) of pi*, MEow, SAC (first seed), modes marked; bottom: rollouts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    A1, A2, _ = action_grid()
    first = {}
    for r in rows:
        first.setdefault(r["algo"], r)
    panels = [("soft-optimal pi* (soft value iteration)", ref)] + [(a.upper(), r) for a, r in first.items()]
    fig, axes = plt.subplots(2, len(panels), figsize=(5 * len(panels), 9.5), squeeze=False)
    for col, (title, r) in enumerate(panels):
        ax = axes[0, col]
        ax.contourf(A1, A2, r["density"] / r["density"].max(), levels=30, cmap="viridis")
        for m in r["modes"]:
            ax.plot(*m, "r+", ms=12, mew=2)
        ax.set_title(f"{title}: pi(a|s=(0,0)), {len(r['modes'])} mode(s) (+)")
        ax.set_xlabel("a_x"); ax.set_ylabel("a_y"); ax.set_aspect("equal")
        ax = axes[1, col]
        if "traj" in r:
            for t in r["traj"][:n_traj]:
                ax.plot(t[:, 0], t[:, 1], lw=0.7, alpha=0.7)
            ax.set_title(f"{title}: {n_traj} rollouts; goals reached\n(+x,-x,+y,-y) {r['goals'].tolist()} of {len(r['traj'])}")
        else:
            im = ax.pcolormesh(r["states"], r["states"], r["v"].T, cmap="viridis", shading="auto")
            fig.colorbar(im, ax=ax, fraction=0.046)
            ax.set_title("soft-optimal value V*(s) (soft value iteration)")
        ax.scatter(MULTIGOAL_GOALS[:, 0], MULTIGOAL_GOALS[:, 1], c="red", s=80, marker="*")
        ax.set_xlim(-7, 7); ax.set_ylim(-7, 7); ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def report_table(rows, ref) -> str:
    """Markdown table of mode_report's measurements."""
    fmt = lambda v: " / ".join(f"{x:.2f}" for x in v)  # noqa: E731
    lines = ["| policy | seed | modes of pi(a|s=0) (positions) | action fraction per goal dir. (+x/-x/+y/-y) | "
             "TV to pi* | V(0) | goals reached (+x/-x/+y/-y) |", "|---|---|---|---|---|---|---|",
             f"| soft-optimal pi* | - | {len(ref['modes'])} ({', '.join(f'({x:.2f},{y:.2f})' for x, y in ref['modes'])}) | "
             f"{fmt(ref['directions'])} | 0 | {ref['v0']:.1f} | - |"]
    for r in rows:
        pos = ", ".join(f"({x:.2f},{y:.2f})" for x, y in r["modes"][:6]) + (" ..." if len(r["modes"]) > 6 else "")
        v0 = "-" if np.isnan(r["v0"]) else f"{r['v0']:.1f}"
        goals = " / ".join(str(int(c)) for c in r["goals"])
        lines.append(f"| {r['algo'].upper()} | {r['seed']} | {len(r['modes'])} ({pos}) | {fmt(r['directions'])} | "
                     f"{r['tv_to_optimum']:.2f} | {v0} | {goals} |")
    return "\n".join(lines)

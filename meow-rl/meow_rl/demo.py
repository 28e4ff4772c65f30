"""Multi-modality demo on the 2-D multi-goal toy: action densities at the origin, measured modes,
goals reached, and the soft-optimal policy (soft value iteration) as the reference."""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from .envs import MULTIGOAL_GOALS, multigoal
from .flow import MEowFlow
from .loop import JaxTrainer
from .meow import make_flow, make_meow
from .sac import Actor, make_sac, tanh_gaussian_log_prob
from .soft_value_iteration import multigoal_q, soft_optimal_log_pi, soft_optimal_value, soft_value_iteration

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
                         sigma_min=demo.meow_sigma_min, sigma_max=demo.meow_sigma_max, init_scheme=demo.meow_init)
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
def action_log_density(algo: str, hp, state, grid, s=(0.0, 0.0)):
    """log pi(a | s) on an (N, 2) grid of actions in (-1, 1)^2 (exact for both policies); s defaults to the origin."""
    s = jnp.broadcast_to(jnp.asarray(s, jnp.float32), (grid.shape[0], 2))
    if algo == "meow":
        flow = make_flow(hp, 2)
        return flow.apply(state["params"], s, grid, method=MEowFlow.log_prob)
    mean, log_std = Actor(2, hp.hidden).apply(state["pi"], s)
    return tanh_gaussian_log_prob(mean, log_std, grid)


def normalised_density(logp) -> np.ndarray:
    """exp(logp) of log-densities on the action grid, normalised to sum 1 over the grid, in float64."""
    logp = np.asarray(logp, np.float64)
    p = np.exp(logp - logp.max())
    return p / p.sum()


def grid_density(algo: str, hp, state, grid, shape, s=(0.0, 0.0)) -> np.ndarray:
    """pi(a | s) on the action grid (reshaped to shape), normalised to sum 1 over the grid, in float64."""
    return normalised_density(np.asarray(action_log_density(algo, hp, state, grid, s)).reshape(shape))


def soft_value(algo: str, hp, state, s=(0.0, 0.0)) -> float:
    """MEow's exact soft value min_k V_k(s) (the quantity its Bellman target uses; s defaults to the origin);
    NaN for SAC, whose V is only a Monte Carlo estimate."""
    if algo != "meow":
        return float("nan")
    flow = make_flow(hp, 2)
    v1, v2 = flow.apply(state["params"], jnp.asarray(s, jnp.float32).reshape(1, 2), method=MEowFlow.v_over_alpha)
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


def goal_direction_fractions(actions: np.ndarray, weights=None) -> np.ndarray:
    """Fraction of actions (N, 2) pointing towards each goal (+x, -x, +y, -y): the goal direction
    with the largest inner product, i.e. four 90-degree sectors centred on the goal axes. With
    `weights` (N values, e.g. a density on the action grid that sums to 1) the summed weight per
    sector instead: the density's mass per goal direction."""
    sector = np.argmax(np.asarray(actions) @ (np.asarray(MULTIGOAL_GOALS) / 5.0).T, axis=1)
    if weights is None:
        return np.bincount(sector, minlength=4) / len(sector)
    return np.bincount(sector, weights=np.ravel(weights), minlength=4)


def format_modes(modes, n: int = 6) -> str:
    """'k ((x,y), ...)': the number of modes and the first n positions (tables of mode_report and the benchmarks)."""
    return f"{len(modes)} (" + ", ".join(f"({x:.2f},{y:.2f})" for x, y in modes[:n]) + (" ...)" if len(modes) > n else ")")


def format_fractions(v) -> str:
    """'a / b / c / d' with two decimals (the per-goal-direction columns)."""
    return " / ".join(f"{x:.2f}" for x in v)


def _count_goals(final) -> np.ndarray:
    """Per-goal counts (+x, -x, +y, -y) of final positions (n, 2) within a goal's radius."""
    d = np.linalg.norm(np.asarray(final)[:, None, :] - MULTIGOAL_GOALS[None], axis=-1)
    hit = d.min(axis=1) < 1.0
    return np.bincount(d.argmin(axis=1)[hit], minlength=len(MULTIGOAL_GOALS))


def goals_reached(agent, state, env, n: int, key, steps: int):
    """n stochastic rollouts started exactly at the origin, each until it reaches a goal or `steps`
    steps; returns the per-goal counts (+x, -x, +y, -y) and the (n, steps+1, 2) trajectories."""
    traj = _rollouts(_sampling(agent.act), env, n, key, steps, state)
    return _count_goals(traj[:, -1]), traj


@lru_cache(maxsize=None)
def _sampling(act):
    """(state, obs, key) -> sampled action of one agent: one function per agent, so the jit'd rollouts
    take the agent state as an argument and compile once per agent, not once per seed."""
    return lambda state, obs, k: act(state, obs, k, False)


def soft_optimal_goals_reached(opt, alpha: float, gamma: float, env, n: int, key, steps: int):
    """The same rollouts with actions sampled from pi* itself: a cell of pi*'s action grid drawn with
    probability pi*(cell | s) at every step, then a uniform point inside the cell."""
    A = np.stack(np.meshgrid(opt.actions, opt.actions, indexing="ij"), -1).reshape(-1, 2)
    A = jnp.asarray(A, jnp.float32)
    half = float(opt.actions[1] - opt.actions[0]) / 2
    v, lo, h = jnp.asarray(opt.v), float(opt.states[0]), float(opt.states[1] - opt.states[0])

    def policy(_, obs, k):
        k_c, k_u = jax.random.split(k)
        q = multigoal_q(v, obs, A, gamma=gamma, lo=lo, h=h)  # (n, M)
        cell = jax.random.categorical(k_c, q / alpha, axis=-1)
        return jnp.clip(A[cell] + jax.random.uniform(k_u, (obs.shape[0], 2), minval=-half, maxval=half), -1.0, 1.0)

    traj = _rollouts(policy, env, n, key, steps)
    return _count_goals(traj[:, -1]), traj


def _rollouts(policy, env, n: int, key, steps: int, policy_state=None) -> np.ndarray:
    """n rollouts of `policy(policy_state, obs, key) -> actions` from s = (0, 0); positions frozen once a
    goal is reached. Returns (n, steps + 1, 2) positions."""
    return np.asarray(_rollouts_jit(policy, env, n, key, steps, policy_state))


@partial(jax.jit, static_argnums=(0, 1, 2, 4))
def _rollouts_jit(policy, env, n, key, steps, policy_state):
    obs = jnp.zeros((n, 2))
    st = {"pos": obs}

    def body(c, k):
        st, obs, alive = c
        st, obs2, _, term = jax.vmap(env.step)(st, policy(policy_state, obs, k))
        obs2 = jnp.where(alive[:, None], obs2, obs)
        return (st, obs2, alive & ~term), obs2

    _, traj = jax.lax.scan(body, (st, obs, jnp.ones(n, bool)), jax.random.split(key, steps))
    return jnp.concatenate([obs[None], traj], axis=0).transpose(1, 0, 2)


def fit_flow_to_optimum(hp, opt, key, steps: int = 3000, batch_size: int = 256):
    """Capacity check, no RL: fit MEow's flow at the single state s = (0, 0) to pi*(. | 0) by maximum
    likelihood on samples of pi* (Adam, MEow's lr and gradient clip, dropout on as in training).
    Returns the fitted parameters: can this flow represent pi*'s four modes at all?"""
    import optax

    flow = make_flow(hp, 2)
    A = jnp.asarray(np.stack(np.meshgrid(opt.actions, opt.actions, indexing="ij"), -1).reshape(-1, 2), jnp.float32)
    log_p = jnp.asarray(soft_optimal_log_pi(opt, hp.alpha, hp.gamma, (0.0, 0.0), A))  # pi* of each grid cell
    half = float(opt.actions[1] - opt.actions[0]) / 2
    k_init, k_loop = jax.random.split(key)
    params = flow.init(k_init, jnp.zeros((1, 2)), jnp.zeros((1, 2)))
    tx = optax.chain(optax.clip_by_global_norm(hp.grad_clip), optax.adam(hp.lr))
    s = jnp.zeros((batch_size, 2))

    def loss(params, k):
        k_c, k_u, k_d = jax.random.split(k, 3)
        a = A[jax.random.categorical(k_c, log_p, shape=(batch_size,))]
        a = a + jax.random.uniform(k_u, a.shape, minval=-half, maxval=half)
        return -jnp.mean(flow.apply(params, s, a, False, method=MEowFlow.log_prob, rngs={"dropout": k_d}))

    @jax.jit
    def run(params, key):
        def step(c, k):
            params, opt_state = c
            g = jax.grad(loss)(params, k)
            upd, opt_state = tx.update(g, opt_state, params)
            return (optax.apply_updates(params, upd), opt_state), None

        (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, steps))
        return params

    return {"params": run(params, k_loop)}


def mode_report(results, demo, seeds, key, n_samples: int = 4000, fit_steps: int = 0, **svi):
    """Per algorithm and seed, measured at the origin s = (0, 0): the density's modes, the fraction
    of sampled actions per goal direction, the total-variation distance of the density to the
    soft-optimal pi*, and the goals reached by `demo.rollouts` rollouts of `demo.rollout_steps`
    steps started at the origin. Returns (rows, reference) where reference describes pi* itself
    (its goals from the same rollouts with actions drawn from pi*). With `fit_steps` > 0 a last row
    (algo "fit") is MEow's flow fitted to pi*(.|0) by maximum likelihood (`fit_flow_to_optimum`)."""
    A1, A2, grid = action_grid()
    opt = soft_value_iteration(demo.meow_alpha, demo.gamma, **svi)  # svi: grid options (tests use a coarse one)
    logp_opt = soft_optimal_log_pi(opt, demo.meow_alpha, demo.gamma, (0.0, 0.0), grid)
    p_opt = np.exp(logp_opt).reshape(A1.shape)
    mid = len(opt.states) // 2  # the state grid is symmetric: its middle point is the origin
    ref = {"density": p_opt, "modes": count_modes(p_opt, (A1, A2)), "residual": opt.residual, "v0": float(opt.v[mid, mid]),
           "v": opt.v, "states": opt.states,
           "directions": goal_direction_fractions(grid, p_opt)}
    ref["goals"], ref["traj"] = soft_optimal_goals_reached(opt, demo.meow_alpha, demo.gamma, multigoal(), demo.rollouts,
                                                           jax.random.fold_in(key, 10_000), demo.rollout_steps)
    rows = []
    for algo, r in results.items():
        n_seeds = jax.tree_util.tree_leaves(r["states"])[0].shape[0]
        for i in range(n_seeds):
            st = jax.tree_util.tree_map(lambda x: x[i], r["states"])
            p = grid_density(algo, r["hp"], st, grid, A1.shape)
            k_s, k_r = jax.random.split(jax.random.fold_in(key, i))
            samples = np.asarray(r["agent"].act(st, jnp.zeros((n_samples, 2)), k_s, False))
            counts, traj = goals_reached(r["agent"], st, r["env"], demo.rollouts, k_r, demo.rollout_steps)
            rows.append({"algo": algo, "seed": seeds[i], "density": p, "modes": count_modes(p, (A1, A2)),
                         "v0": soft_value(algo, r["hp"], st),
                         "directions": goal_direction_fractions(samples), "tv_to_optimum": 0.5 * np.abs(p - p_opt).sum(),
                         "goals": counts, "traj": traj})
    if fit_steps > 0:
        hp = next((r["hp"] for a, r in results.items() if a == "meow"), None)
        if hp is None:
            raise ValueError("fit_steps needs the meow results (its hyperparameters)")
        st = fit_flow_to_optimum(hp, opt, jax.random.fold_in(key, 20_000), fit_steps)
        p = grid_density("meow", hp, st, grid, A1.shape)
        samples = np.asarray(make_flow(hp, 2).apply(st["params"], jnp.zeros((n_samples, 2)), jax.random.normal(
            jax.random.fold_in(key, 20_001), (n_samples, 2)), method=MEowFlow.sample))
        rows.append({"algo": "fit", "seed": "-", "density": p, "modes": count_modes(p, (A1, A2)), "v0": float("nan"),
                     "directions": goal_direction_fractions(samples), "tv_to_optimum": 0.5 * np.abs(p - p_opt).sum(),
                     "goals": None, "traj": None})
    return rows, ref


def densities_at_states(result, demo, seeds, states, key, n_samples: int = 4000, **svi):
    """MEow (train_multigoal's "meow" entry) against pi* at each state s of `states` ((x, y) pairs), not
    only the origin: per state a reference row (pi*(.|s), its modes, V*(s), its action mass per goal
    direction) and per seed the density's modes, TV to pi*(.|s), MEow's exact V(s) and the fraction of
    sampled actions per goal direction. Returns a list of rows (seed "pi*" for the reference)."""
    A1, A2, grid = action_grid()
    opt = soft_value_iteration(demo.meow_alpha, demo.gamma, **svi)
    rows = []
    for j, s in enumerate(states):
        s = (float(s[0]), float(s[1]))
        p_opt = normalised_density(soft_optimal_log_pi(opt, demo.meow_alpha, demo.gamma, s, grid).reshape(A1.shape))
        rows.append({"state": s, "seed": "pi*", "density": p_opt, "modes": count_modes(p_opt, (A1, A2)),
                     "v": soft_optimal_value(opt, s), "tv_to_optimum": 0.0,
                     "directions": goal_direction_fractions(grid, p_opt)})
        for i, seed in enumerate(seeds):
            st = jax.tree_util.tree_map(lambda x: x[i], result["states"])
            p = grid_density("meow", result["hp"], st, grid, A1.shape, s)
            obs = jnp.broadcast_to(jnp.asarray(s, jnp.float32), (n_samples, 2))
            samples = np.asarray(result["agent"].act(st, obs, jax.random.fold_in(key, 1000 * j + i), False))
            rows.append({"state": s, "seed": seed, "density": p, "modes": count_modes(p, (A1, A2)),
                         "v": soft_value("meow", result["hp"], st, s), "tv_to_optimum": 0.5 * np.abs(p - p_opt).sum(),
                         "directions": goal_direction_fractions(samples)})
    return rows


def plot_multigoal(rows, ref, path, n_traj: int = 50):
    """Top: pi(a | s=(0,0)) of pi*, MEow, SAC (first seed), modes marked; bottom: rollouts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    A1, A2, _ = action_grid()
    first = {}
    for r in rows:
        first.setdefault(r["algo"], r)
    names = {"fit": "MEow flow fit to pi*(.|0) (no RL)"}
    panels = [("soft-optimal pi* (soft value iteration)", ref)] + [(names.get(a, a.upper()), r) for a, r in first.items()]
    fig, axes = plt.subplots(2, len(panels), figsize=(5 * len(panels), 9.5), squeeze=False)
    for col, (title, r) in enumerate(panels):
        ax = axes[0, col]
        ax.contourf(A1, A2, r["density"] / r["density"].max(), levels=30, cmap="viridis")
        for m in r["modes"]:
            ax.plot(*m, "r+", ms=12, mew=2)
        ax.set_title(f"{title}: pi(a|s=(0,0)), {len(r['modes'])} mode(s) (+)")
        ax.set_xlabel("a_x"); ax.set_ylabel("a_y"); ax.set_aspect("equal")
        ax = axes[1, col]
        if "v" in r:  # the reference: V*(s) under its rollouts
            im = ax.pcolormesh(r["states"], r["states"], r["v"].T, cmap="Greys_r", shading="auto")
            fig.colorbar(im, ax=ax, fraction=0.046, label="V*(s)")
        if r.get("traj") is not None:
            for t in r["traj"][:n_traj]:
                ax.plot(t[:, 0], t[:, 1], lw=0.7, alpha=0.7)
            ax.set_title(f"{title}:\n{n_traj} rollouts from (0,0); goals reached (+x,-x,+y,-y)\n"
                         f"{r['goals'].tolist()} of {len(r['traj'])}")
        else:
            ax.set_title(f"{title}: fitted at s = (0,0) only, no rollouts")
        ax.scatter(MULTIGOAL_GOALS[:, 0], MULTIGOAL_GOALS[:, 1], c="red", s=80, marker="*")
        ax.set_xlim(-7, 7); ax.set_ylim(-7, 7); ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def report_table(rows, ref) -> str:
    """Markdown table of mode_report's measurements."""
    goals = lambda g: "-" if g is None else " / ".join(str(int(c)) for c in g)  # noqa: E731
    n = len(ref["traj"])
    lines = ["| policy | seed | modes of pi(a|s=0) (positions) | action fraction per goal dir. (+x/-x/+y/-y) | "
             f"TV to pi* | V(0) | goals reached from (0,0) (+x/-x/+y/-y) of {n} |", "|---|---|---|---|---|---|---|",
             f"| soft-optimal pi* | - | {len(ref['modes'])} ({', '.join(f'({x:.2f},{y:.2f})' for x, y in ref['modes'])}) | "
             f"{format_fractions(ref['directions'])} | 0 | {ref['v0']:.1f} | {goals(ref['goals'])} |"]
    names = {"fit": "MEow flow fit to pi*(.\\|0), no RL"}
    for r in rows:
        v0 = "-" if np.isnan(r["v0"]) else f"{r['v0']:.1f}"
        lines.append(f"| {names.get(r['algo'], r['algo'].upper())} | {r['seed']} | {format_modes(r['modes'])} | "
                     f"{format_fractions(r['directions'])} | {r['tv_to_optimum']:.2f} | {v0} | {goals(r['goals'])} |")
    return "\n".join(lines)

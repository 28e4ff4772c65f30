"""Episode runner over a batch of environment copies (PyMARL's parallel runner, vectorised):
runs one episode in each copy with the controller, returns the padded episodes and their statistics."""
import numpy as np


def run_episodes(env, controller, epsilon: float, rng: np.random.Generator):
    B, n, L = env.n_envs, env.n_agents, env.episode_limit
    T = L + 1
    ep = {
        "obs": np.zeros((B, T, n, env.obs_dim), np.float32),
        "state": np.zeros((B, T, env.state_dim), np.float32),
        "avail": np.zeros((B, T, n, env.n_actions), np.float32),
        "actions": np.zeros((B, T, n), np.int64),
        "reward": np.zeros((B, T), np.float32),
        "terminated": np.zeros((B, T), np.float32),
        "filled": np.zeros((B, T), np.float32),
    }
    ret = np.zeros(B)
    won = np.zeros(B, bool)
    length = np.zeros(B, np.int64)
    active = np.ones(B, bool)
    o = env.reset()
    controller.init_hidden(B)
    for t in range(L):
        ep["obs"][active, t], ep["state"][active, t], ep["avail"][active, t] = o.obs[active], o.state[active], o.avail[active]
        actions = controller.select_actions(o.obs, o.avail, epsilon, rng)
        o, reward, terminated, done, win = env.step(actions)
        done = done | (t == L - 1)
        a = active
        ep["actions"][a, t], ep["reward"][a, t] = actions[a], reward[a]
        ep["terminated"][a, t], ep["filled"][a, t] = terminated[a], 1.0
        ret[a] += reward[a]
        won[a] |= win[a]
        length[a] += 1
        finished = a & done
        # the final observation of a finished episode (used only through the target; masked if terminal)
        ep["obs"][finished, t + 1], ep["state"][finished, t + 1], ep["avail"][finished, t + 1] = _final(env, o, finished)
        active = a & ~done
        if not active.any():
            break
    return ep, {"return": ret, "won": won, "length": length}


def _final(env, o, finished):
    final = getattr(env, "last_final_obs", None)  # environments with auto-reset keep the pre-reset observation
    src = final if final is not None else o
    return src.obs[finished], src.state[finished], src.avail[finished]

"""The two-step cooperative matrix game of QMIX (Rashid et al. 2018, fig. 3), with stochastic rewards.

State 1: agent 1's action picks the next state, 2A (action 0) or 2B (action 1); reward 0.
State 2A: every joint action pays 7.   State 2B: pays [[0, 1], [1, 8]] (agent 1 row, agent 2 column).
The episode ends after the second step. Optimal policy: 2B, then (1, 1); return 8 (times gamma from state 1).

Stochastic rewards (the DFAC paper's exact noise model was not retrieved; this one is a config option):
  "none"       r = R
  "plusminus"  r = R + c or R - c, each with probability 1/2     (default, c = `noise_scale`)
  "gaussian"   r = R + c * N(0, 1)
  "bernoulli"  r = 2R or 0, each with probability 1/2
Every model keeps E[r] = R, so the expected-value game (and its optimum) is the QMIX paper's.
"""
import numpy as np

from .base import MultiAgentEnv, Obs

PAYOFF_2A = np.full((2, 2), 7.0)
PAYOFF_2B = np.array([[0.0, 1.0], [1.0, 8.0]])
NOISE_MODELS = ("none", "plusminus", "gaussian", "bernoulli")


def reward_samples(R: float, noise: str, scale: float):
    """The support and probabilities of the stochastic reward whose mean is R (for the true quantiles)."""
    if noise == "none":
        return np.array([R]), np.array([1.0])
    if noise == "plusminus":
        return np.array([R - scale, R + scale]), np.array([0.5, 0.5])
    if noise == "bernoulli":
        return np.array([0.0, 2 * R]), np.array([0.5, 0.5])
    raise ValueError(f"no finite support for noise model {noise!r}")


def true_quantiles(R: float, noise: str, scale: float, taus: np.ndarray, discount: float = 1.0) -> np.ndarray:
    """F^{-1}(tau) of discount * r, r the stochastic reward with mean R."""
    if noise == "gaussian":
        from statistics import NormalDist

        return discount * np.array([R + scale * NormalDist().inv_cdf(float(np.clip(t, 1e-6, 1 - 1e-6))) for t in taus])
    vals, probs = reward_samples(R, noise, scale)
    order = np.argsort(vals)
    vals, cdf = vals[order], np.cumsum(probs[order])
    idx = np.minimum(np.searchsorted(cdf, taus, side="left"), len(vals) - 1)
    return discount * vals[idx]


class TwoStepMatrixGame(MultiAgentEnv):
    n_agents, n_actions, obs_dim, state_dim, episode_limit = 2, 2, 3, 3, 2

    def __init__(self, n_envs: int = 1, noise: str = "plusminus", noise_scale: float = 2.0, seed: int = 0):
        if noise not in NOISE_MODELS:
            raise ValueError(f"noise must be one of {NOISE_MODELS}, got {noise!r}")
        if n_envs < 1:
            raise ValueError("n_envs must be >= 1")
        self.n_envs, self.noise, self.noise_scale = n_envs, noise, float(noise_scale)
        self.rng = np.random.default_rng(seed)
        self.s = np.zeros(n_envs, dtype=np.int64)  # 0: state 1, 1: state 2A, 2: state 2B

    def get_rng_state(self):
        return self.rng.bit_generator.state

    def set_rng_state(self, state):
        if state is not None:
            self.rng.bit_generator.state = state

    def _obs(self) -> Obs:
        state = np.eye(3, dtype=np.float32)[self.s]
        obs = np.repeat(state[:, None], self.n_agents, axis=1)
        avail = np.ones((self.n_envs, self.n_agents, self.n_actions), dtype=np.float32)
        return Obs(obs, state, avail)

    def reset(self) -> Obs:
        self.s[:] = 0
        return self._obs()

    def expected_reward(self, s: np.ndarray, actions: np.ndarray) -> np.ndarray:
        a1, a2 = actions[:, 0], actions[:, 1]
        return np.where(s == 0, 0.0, np.where(s == 1, PAYOFF_2A[a1, a2], PAYOFF_2B[a1, a2]))

    def _noisy(self, R: np.ndarray, s: np.ndarray) -> np.ndarray:
        coin = self.rng.random(R.shape) < 0.5
        if self.noise == "plusminus":
            r = R + np.where(coin, self.noise_scale, -self.noise_scale)
        elif self.noise == "gaussian":
            r = R + self.noise_scale * self.rng.standard_normal(R.shape)
        elif self.noise == "bernoulli":
            r = np.where(coin, 2 * R, 0.0)
        else:
            r = R.copy()
        return np.where(s == 0, 0.0, r)  # the first step pays nothing, deterministically

    def step(self, actions):
        actions = self.check_actions(actions)
        s = self.s.copy()
        reward = self._noisy(self.expected_reward(s, actions), s).astype(np.float32)
        done = s != 0
        self.s = np.where(s == 0, 1 + actions[:, 0], 0)  # agent 1 picks 2A / 2B; terminal -> auto-reset
        won = done & (self.expected_reward(s, actions) >= 8.0)
        return self._obs(), reward, done.copy(), done, won

"""What the two-step game shows: the learned joint values and return distribution beside the true ones."""
import numpy as np
import torch
import torch.nn.functional as F

from .envs.matrix_game import PAYOFF_2A, PAYOFF_2B, true_quantiles
from .learner import unroll


def tau_grid(K: int) -> np.ndarray:
    return (np.arange(K) + 0.5) / K


def _episode_batch(first, second, device="cpu"):
    """The 2-step episode batch (obs for state 1, the chosen 2A/2B, and the final state) for given joint actions."""
    s1 = 1 + first[0]
    obs = np.stack([np.eye(3)[0], np.eye(3)[s1], np.eye(3)[0]])  # [T+1=3, 3]
    batch = {
        "obs": torch.tensor(np.repeat(obs[:, None], 2, 1)[None], dtype=torch.float32),
        "state": torch.tensor(obs[None], dtype=torch.float32),
        "avail": torch.ones(1, 3, 2, 2),
        "actions": torch.tensor([[first, second, [0, 0]]], dtype=torch.long),
        "filled": torch.tensor([[1.0, 1.0, 0.0]]),
    }
    return {k: v.to(device) for k, v in batch.items()}


@torch.no_grad()
def joint_values(learner, first, second, K: int = 32):
    """Z_jt (or Q_jt) at t = 0 and t = 1 for the joint actions `first`, `second`: -> [2, K] (or [2, 1])."""
    b = _episode_batch(list(first), list(second), learner.device)
    a = b["actions"][:, :2]
    if learner.distributional:
        taus = torch.tensor(tau_grid(K), dtype=torch.float32, device=learner.device).expand(1, 3, 2, K)
        z = unroll(learner.agent, b, 2, taus)[:, :2]  # [1, 2, n, A, K]
        chosen = z.gather(3, a[..., None, None].expand(1, 2, 2, 1, K)).squeeze(3)
        if learner.mixer is None:
            return chosen.sum(2)[0].cpu()  # DIQL: no joint distribution; the sum is shown
        max_q = z.mean(-1).max(-1).values
        return learner.mixer(chosen, b["state"][:, :2], F.one_hot(a, 2).float(), max_q)[0].cpu()
    q = _utilities(learner, b, K)[:, :2]
    chosen = q.gather(-1, a[..., None]).squeeze(-1)
    if learner.mixer is None:
        return chosen.sum(-1)[0][:, None].cpu()
    return learner.mixer(chosen, b["state"][:, :2], F.one_hot(a, 2).float(), q.max(-1).values)[0][:, None].cpu()


def _utilities(learner, b, K: int):
    """E[Z_i] over a grid of K fractions for an agent that takes fractions, else Q_i: [1, 3, n, A]."""
    if not learner.agent.quantile_input:
        return unroll(learner.agent, b, 2)
    taus = torch.tensor(tau_grid(K), dtype=torch.float32, device=learner.device).expand(1, 3, 2, K)
    return unroll(learner.agent, b, 2, taus).mean(-1)


@torch.no_grad()
def greedy_policy(learner):
    """Greedy joint actions at state 1 and in the state they lead to (acting on the mean, as the controller)."""
    K = 64
    b = _episode_batch([0, 0], [0, 0], learner.device)
    q0 = _utilities(learner, b, K)[0, 0]  # [n, A] at state 1
    first = q0.argmax(-1).tolist()
    b = _episode_batch(first, [0, 0], learner.device)
    q1 = _utilities(learner, b, K)[0, 1]
    return first, q1.argmax(-1).tolist()


def matrix_report(learner, noise: str, noise_scale: float, gamma: float, K: int = 32) -> dict:
    first, second = greedy_policy(learner)
    payoff = PAYOFF_2A if first[0] == 0 else PAYOFF_2B
    R = float(payoff[second[0], second[1]])
    q2b = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            q2b[i, j] = joint_values(learner, [1, first[1]], [i, j], K)[1].mean().item()
    z0 = joint_values(learner, first, second, K)[0].numpy()  # joint return distribution at state 1
    taus = tau_grid(K)
    true_greedy = true_quantiles(R, noise, noise_scale, taus, gamma)  # of the learned greedy policy
    true_opt = true_quantiles(8.0, noise, noise_scale, taus, gamma)  # of the optimal policy
    return {
        "first": first, "second": second, "greedy_expected_return": R, "optimal": R == 8.0,
        "q_jt_2B": q2b, "z_state1": np.sort(z0), "true_state1_greedy": true_greedy, "true_state1_optimal": true_opt,
        "mean_state1": float(z0.mean()), "true_mean_state1": gamma * R,
        "w1_state1": float(np.abs(np.sort(z0) - true_greedy).mean()) if len(z0) == K else float("nan"),
    }

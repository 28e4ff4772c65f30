"""The transition discriminator of TDIL and the expert-proximity reward built from it.

Paper (Chiang et al., ICML 2024), Sec. "Transition discriminator" and "Expert proximity":
  * D(s, s'') in [0, 1] says whether s'' is reachable from s in ONE environment step.
  * Valid transitions are the agent's own (s_t, s_{t+1}); non-valid ones are
      - easy negatives  (s_t, s'_k) with s'_k the next state of another transition k != t,
      - hard negatives  (s_{t+1}, s_t): the reversed transition.
  * Loss: weighted binary cross-entropy, weights 0.99 (valid) / 0.01 (easy) / 1.0 (hard).
  * Surrogate reward (expert proximity), with s'_E,j the expert's next states:
        r(s') = sum_j D_target(s', s'_E,j)                                        (TDIL reward)
    = the expected number of expert states reachable from s' in one step.
The official code calls D the "neighborhood" net.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# Paper weights of the three kinds of pairs in the BCE loss.
W_VALID, W_EASY, W_HARD = 0.99, 0.01, 1.0


class TransitionDiscriminator(nn.Module):
    """D(s, s'') = sigmoid(MLP([s, s''])), 3 hidden ReLU layers (paper: 256 wide)."""

    def __init__(self, obs_dim: int, hidden: int = 256, layers: int = 3):
        super().__init__()
        self.obs_dim = obs_dim
        self.first = nn.Linear(2 * obs_dim, hidden)
        rest: list[nn.Module] = [nn.ReLU()]
        for _ in range(layers - 1):
            rest += [nn.Linear(hidden, hidden), nn.ReLU()]
        rest.append(nn.Linear(hidden, 1))
        self.rest = nn.Sequential(*rest)

    def logits(self, s: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first(torch.cat([s, s2], -1))).squeeze(-1)

    def forward(self, s: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(s, s2))

    def pairwise(self, s: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        """P[i, j] = D(s_i, s2_j) for all pairs, without materialising the N x M concatenation:
        the first layer is linear, W [s; s2] + b = W_a s + W_b s2 + b."""
        d = self.obs_dim
        w, b = self.first.weight, self.first.bias
        ha = s @ w[:, :d].T + b  # (N, H)
        hb = s2 @ w[:, d:].T  # (M, H)
        h = ha[:, None, :] + hb[None, :, :]  # (N, M, H)
        return torch.sigmoid(self.rest(h).squeeze(-1))


def transition_pairs(s: torch.Tensor, s_next: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Valid / non-valid pairs from a batch of agent transitions (s_t, s_{t+1}).

    Returns (first, second, label, weight), each with 3B rows ordered
    [valid (s_t, s_{t+1}) | easy negative (s_t, s_{k+1}), k = t-1 mod B | hard negative (s_{t+1}, s_t)].
    """
    b = s.shape[0]
    first = torch.cat([s, s, s_next])
    second = torch.cat([s_next, torch.roll(s_next, 1, dims=0), s])
    kw = dict(dtype=s.dtype, device=s.device)
    label = torch.cat([torch.ones(b, **kw), torch.zeros(2 * b, **kw)])
    weight = torch.cat([torch.full((b,), W_VALID, **kw), torch.full((b,), W_EASY, **kw), torch.full((b,), W_HARD, **kw)])
    return first, second, label, weight


def discriminator_loss(disc: TransitionDiscriminator, s: torch.Tensor, s_next: torch.Tensor) -> torch.Tensor:
    """Weighted BCE over valid and non-valid transitions (paper's discriminator objective)."""
    first, second, label, weight = transition_pairs(s, s_next)
    logits = disc.logits(first, second)
    return (weight * F.binary_cross_entropy_with_logits(logits, label, reduction="none")).mean()


@torch.no_grad()
def expert_proximity_reward(
    disc: TransitionDiscriminator, next_states: torch.Tensor, expert_next_states: torch.Tensor, chunk: int = 256
) -> torch.Tensor:
    """r(s'_i) = sum_j D(s'_i, s'_E,j)   (TDIL surrogate reward; chunked over i to bound memory)."""
    out = [disc.pairwise(next_states[i : i + chunk], expert_next_states).sum(-1) for i in range(0, len(next_states), chunk)]
    return torch.cat(out) if out else torch.zeros(0)

"""Why does DDN (official N = N' = 1) win nothing on SMAX 3m while VDN learns? Trains the given variants with the
`quick` micro settings and records, every `--every` updates, on the sampled batch before the update:

  loss            the learner's loss (quantile Huber for DFAC, squared TD error for VDN / QMIX)
  mse_means       (mean_k Z_jt(tau_k) - mean_j y_j)^2: the squared TD error of the means, on VDN's loss scale
  |g_agent|, |g_mixer|  gradient norms of the loss on the agent network and on the mixer
  mean_err        max |mean_k Z_jt(tau_k) - f(E[Z_1], ..., E[Z_n])|: the mean part is the expected-value mixer
                  (for DDN, f = VDN's sum)
  shape_mean      max |mean_k shape(tau_k)|: the shape part has zero mean (mean-shape decomposition)
  q_jt, G         the online E[Z_jt] (or Q_jt) of the taken actions and the discounted return that followed in the batch
                  (IQL / DIQL have no mixer: q_jt is the sum of the agents' utilities, each of which estimates G)
  |Q_i|, gap      the agents' utilities E[Z_i] (32 fractions) of the taken actions and their action gap
  flip            share of (step, agent) whose greedy action differs between two independent draws of 32 fractions
  attack          share of (step, agent) whose greedy available action is an attack (SMAX actions 5+)
  timeout, to_steps  share of the batch's episodes that ended by the time limit (last filled step not terminal, so the
                  target bootstraps there, as PyMARL does), and share of the batch's steps that lie in them
  q_jt_to, q_jt_te, G_te  q_jt over the steps of time-limited episodes, and q_jt and G over those of terminated ones
                  (G of a time-limited episode stops at the limit, so it understates what q_jt estimates there)
  a*_agree        share of (next step, agent) where the target's greedy action from the learner's target samples
                  (N' of them, or K when n_greedy_quantiles > 0) equals the one from the mean of 256 fractions
  tgt_bias        mean over steps of E[Z_jt'] at the learner's a* (estimated from those same samples, as the learner's
                  target is) minus E_256[Z_jt'] at a*_256: how much the learner's choice of the target action inflates
                  the target's mean (target network and target mixer, non-terminal next states)

The extra forward passes restore torch's random state, so each job follows the same trajectory as
`python train.py --phases micro --algs <alg> --seeds <seed>` would (same win rates).

  python diagnostics/ddn_vs_vdn.py --variants "vdn,ddn,ddn:n_greedy_quantiles=32,dmix" --seeds 0
"""
import argparse

import numpy as np
import torch
import torch.nn.functional as F

from dfac.learner import Learner, unroll
from variants import grad_norm as _norm, instrument, run_variants  # diagnostics/variants.py (this folder is on sys.path)

N_EVAL = 32  # fractions for the agents' E[Z_i] (the acting N^)
N_REF = 256  # fractions for the reference mean of the target


def _greedy(q, avail):
    return q.masked_fill(avail == 0, -1e10).argmax(-1)


@torch.no_grad()
def _means(agent, batch, n_actions, learner, N):
    B, T1, n = batch["obs"].shape[:3]
    return unroll(agent, batch, n_actions, learner._taus(B, T1, n, N)).mean(-1)


def _target_value(learner, t_means, a, state):
    """The target mixer's E[Z_jt'] at the agents' actions a, from the agents' mean estimates t_means [B, T, n, A]."""
    v = t_means.gather(-1, a[..., None])  # [B, T, n, 1]: one 'quantile', the mean
    if learner.target_mixer is None:
        return v.squeeze(-1).sum(-1)
    onehot = F.one_hot(a, learner.n_actions).float()
    return learner.target_mixer(v, state[:, 1:], onehot, t_means.max(-1).values).squeeze(-1)


def diagnose(learner: Learner, batch: dict, gamma: float) -> dict:
    rng_state = torch.get_rng_state()
    batch = {k: v.to(learner.device) for k, v in batch.items()}
    loss, _ = learner.loss(batch)
    agent_p = list(learner.agent.parameters())
    mixer_p = list(learner.mixer.parameters()) if learner.mixer is not None else []
    g = torch.autograd.grad(loss, agent_p + mixer_p, allow_unused=True)
    B, T1, n = batch["obs"].shape[:3]
    A = learner.n_actions
    avail, actions, state, r = batch["avail"], batch["actions"], batch["state"], batch["reward"][:, :-1] * learner.reward_scale
    term = batch["terminated"][:, :-1]
    mask = batch["filled"][:, :-1].clone()
    mask[:, 1:] = mask[:, 1:] * (1 - term[:, :-1])
    m = mask > 0
    rec = {"loss": float(loss.detach()), "g_agent": _norm(g[: len(agent_p)]), "g_mixer": _norm(g[len(agent_p):])}
    with torch.no_grad():
        onehot = F.one_hot(actions[:, :-1], A).float()
        # discounted return that followed each step in the batch's episodes
        G = torch.zeros_like(r)
        acc = torch.zeros_like(r[:, 0])
        for t in reversed(range(r.shape[1])):
            acc = r[:, t] + gamma * acc * batch["filled"][:, t]
            G[:, t] = acc
        if learner.distributional:
            taus = learner._taus(B, T1, n, max(learner.N, 2))
            z = unroll(learner.agent, batch, A, taus)
            chosen = z[:, :-1].gather(3, actions[:, :-1][..., None, None].expand(B, T1 - 1, n, 1, z.shape[-1])).squeeze(3)
            max_q = z.mean(-1).masked_fill(avail == 0, -1e10).max(-1).values[:, :-1]
            z_tot = learner.mixer(chosen, state[:, :-1], onehot, max_q) if learner.mixer is not None else chosen.sum(-2)
            inner = getattr(learner.mixer, "mean_mixer", None)
            q_mean = inner(chosen.mean(-1), state[:, :-1], onehot, max_q) if inner is not None else chosen.mean(-1).sum(-1)
            rec["mean_err"] = float((z_tot.mean(-1) - q_mean)[m].abs().max())
            rec["shape_mean"] = float((z_tot - q_mean.unsqueeze(-1)).mean(-1)[m].abs().max())
            q = _means(learner.agent, batch, A, learner, N_EVAL)
            q2 = _means(learner.agent, batch, A, learner, N_EVAL)
            # the learner's own target: a* from its target samples (or K fractions), y = r + gamma E[Z_jt'(a*)]
            tq_ref = _means(learner.target_agent, batch, A, learner, N_REF)[:, 1:]
            nxt = avail[:, 1:]
            if learner.K:
                t_pick = _means(learner.target_agent, batch, A, learner, learner.K)[:, 1:]
            else:
                t_pick = _means(learner.target_agent, batch, A, learner, learner.N_target)[:, 1:]
            a_l, a_ref = _greedy(t_pick, nxt), _greedy(tq_ref, nxt)
            v_l, v_ref = _target_value(learner, t_pick, a_l, state), _target_value(learner, tq_ref, a_ref, state)
            mt = m & (term == 0)
            rec["a*_agree"] = float((a_l == a_ref)[mt].float().mean())
            rec["tgt_bias"] = float((v_l - v_ref)[mt].mean())
            # squared TD error of the means, on VDN's scale (the learner's loss with its own tau draws)
            y_mean = r + gamma * (1 - term) * v_l
            qj = (_means(learner.agent, batch, A, learner, N_EVAL)[:, :-1].gather(-1, actions[:, :-1, :, None]).squeeze(-1))
            q_jt = learner.mixer(qj.unsqueeze(-1), state[:, :-1], onehot, max_q).squeeze(-1) if learner.mixer is not None else qj.sum(-1)
            rec["mse_means"] = float(((q_jt - y_mean) ** 2)[m].mean())
        else:
            q = learner.utilities(learner.agent, batch, N_EVAL)  # Q_i (or, with --agent iqn, E[Z_i] over 32 fractions)
            q2 = learner.utilities(learner.agent, batch, N_EVAL) if learner.agent.quantile_input else q
            chosen = q[:, :-1].gather(-1, actions[:, :-1, :, None]).squeeze(-1)
            max_q = q.masked_fill(avail == 0, -1e10).max(-1).values[:, :-1]
            q_jt = learner.mixer(chosen, state[:, :-1], onehot, max_q) if learner.mixer is not None else chosen.sum(-1)
            rec.update(mean_err=float("nan"), shape_mean=float("nan"), **{"a*_agree": float("nan")}, tgt_bias=float("nan"))
            rec["mse_means"] = rec["loss"]
        qa = q[:, :-1][m]
        av = avail[:, :-1][m] > 0
        top2 = qa.masked_fill(~av, -float("inf")).topk(2, -1).values
        ok = torch.isfinite(top2).all(-1)
        greedy = _greedy(qa, av.float())
        rec["flip"] = float((greedy != _greedy(q2[:, :-1][m], av.float())).float().mean())
        rec["gap"] = float((top2[..., 0] - top2[..., 1])[ok].mean())
        rec["q_abs"] = float(qa.gather(-1, actions[:, :-1][m][..., None]).abs().mean())
        rec["attack"] = float((greedy >= 5).float().mean())
        rec["q_jt"] = float(q_jt[m].mean())
        rec["G"] = float(G[m].mean())
        # episodes that ended by the time limit (last filled step not terminal: the target bootstraps there)
        filled = batch["filled"][:, :-1]
        last = filled - torch.cat([filled[:, 1:], torch.zeros_like(filled[:, :1])], 1)  # 1 at each episode's last step
        timeout = ((last * (1 - term)).sum(1) > 0)  # [B]
        mt_ = m & timeout[:, None]
        rec["timeout"] = float(timeout.float().mean())
        rec["to_steps"] = float(mt_.sum() / m.sum())
        rec["q_jt_to"] = float(q_jt[mt_].mean()) if mt_.any() else float("nan")
        me_ = m & ~timeout[:, None]
        rec["q_jt_te"] = float(q_jt[me_].mean()) if me_.any() else float("nan")
        rec["G_te"] = float(G[me_].mean()) if me_.any() else float("nan")
    torch.set_rng_state(rng_state)
    return rec


COLS = ["update", "loss", "mse_means", "g_agent", "g_mixer", "mean_err", "shape_mean", "q_jt", "G", "q_abs", "gap", "flip",
        "attack", "a*_agree", "tgt_bias", "timeout", "to_steps", "q_jt_to", "q_jt_te", "G_te"]
SUMMARY = ["loss", "mse_means", "g_agent", "mean_err", "shape_mean", "q_jt", "G", "q_abs", "gap", "flip", "attack", "a*_agree", "tgt_bias",
           "timeout", "to_steps", "q_jt_to", "q_jt_te", "G_te"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default="vdn,ddn", help="alg[:field=value;field=value], comma separated")
    p.add_argument("--seeds", default="0")
    p.add_argument("--every", type=int, default=50, help="record every this many updates")
    p.add_argument("--t_max", type=int, default=60_000)
    p.add_argument("--rows", action="store_true", help="print every recorded row, not only the summary")
    a = p.parse_args()
    torch.set_num_threads(1)
    summary = []

    def instrument_once(cfg):  # gamma comes from the first variant's config; instrument wraps only once
        instrument(a.every, lambda learner, batch: diagnose(learner, batch, cfg.gamma))

    for spec, seed, learner, hist, wall in run_variants(a.variants, a.seeds, a.t_max, instrument_once):
        print(f"\n== {spec} seed {seed}: {wall:.0f} s; greedy win rate (test return) at "
              + ", ".join(f"{h['t_env'] // 1000}k {h['test_win_rate']:.2f} ({h['test_return']:.2f})" for h in hist), flush=True)
        if a.rows:
            print(" ".join(f"{c:>10}" for c in COLS))
            for r in learner._diag:
                print(" ".join(f"{r[c]:>10.4g}" if isinstance(r[c], float) else f"{r[c]:>10}" for c in COLS))
        late = learner._diag[len(learner._diag) // 2:]
        summary.append((spec, seed, hist[-1]["test_win_rate"], max(h["test_win_rate"] for h in hist),
                        {c: float(np.nanmean([r[c] for r in late])) for c in SUMMARY}, learner._diag[0]))
    print("\nmeans over the second half of the recorded updates (first recorded update in brackets for gap / flip / attack)")
    print("| variant | seed | final win | best win | " + " | ".join(SUMMARY) + " |")
    print("|---|---|---|---|" + "---|" * len(SUMMARY))
    for spec, seed, fw, bw, mm, first in summary:
        cells = []
        for c in SUMMARY:
            cell = f"{mm[c]:.3g}"
            if c in ("gap", "flip", "attack"):
                cell += f" ({first[c]:.2g})"
            cells.append(cell)
        print(f"| {spec} | {seed} | {fw:.2f} | {bw:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

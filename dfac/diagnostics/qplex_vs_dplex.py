"""Why does QPLEX (Qatten) learn more slowly than DPLEX on SMAX 3m? Trains the given variants with the `quick`
micro settings and records, every `--every` updates, on the sampled batch before the update:

  td / reg        the TD (or quantile Huber) loss and Qatten's attention regulariser
  |g_agent|       gradient norm of the TD loss on the agent network;  |g_mixer| on the mixer
  |dtheta_agent|  how far the optimiser step moved the agent network's parameters
  w mean, w max/min  the transformation weights w_i(s) (Qatten: sum_h softmax; sum_i w_i = n_head)
  lambda          the advantage weights lambda_i(s, a) of the duplex dueling term
  |Q_i|, gap      the agents' utilities (E[Z_i] for DPLEX) and their action gap (best - second best available)
  attack          the fraction of (step, agent) whose greedy available action is an attack (SMAX actions 5+)

The extra forward passes restore torch's random state, so each job follows the same trajectory as
`python train.py --phases micro --algs <alg> --seeds <seed>` would (same win rates).

  python diagnostics/qplex_vs_dplex.py --variants qplex,dplex,qplex:qplex_attention=false --seeds 0
"""
import argparse

import numpy as np
import torch
import torch.nn.functional as F

from dfac.learner import Learner, unroll
from dfac.mixers import mixer_aux_loss
from variants import grad_norm as _norm, instrument, run_variants  # diagnostics/variants.py (this folder is on sys.path)


def diagnose(learner: Learner, batch: dict) -> dict:
    rng_state = torch.get_rng_state()
    batch = {k: v.to(learner.device) for k, v in batch.items()}
    loss, _ = learner.loss(batch)
    aux = mixer_aux_loss(learner.mixer)
    aux = aux if torch.is_tensor(aux) else torch.zeros(())
    td = loss - aux
    agent_p, mixer_p = list(learner.agent.parameters()), list(learner.mixer.parameters())
    g = torch.autograd.grad(td, agent_p + mixer_p, retain_graph=True, allow_unused=True)
    g_reg = torch.autograd.grad(aux, mixer_p, allow_unused=True) if aux.requires_grad else []
    qplex = getattr(learner.mixer, "mean_mixer", learner.mixer)
    with torch.no_grad():
        B, T1, n = batch["obs"].shape[:3]
        mask = batch["filled"][:, :-1] > 0
        s = batch["state"][:, :-1][mask]
        onehot = F.one_hot(batch["actions"][:, :-1][mask], learner.n_actions).float().reshape(s.shape[0], -1)
        w, b = qplex.weights(s)
        lam = qplex.lambdas(s, onehot)
        if learner.distributional:
            q = unroll(learner.agent, batch, learner.n_actions, learner._taus(B, T1, n, learner.N)).mean(-1)
        else:
            q = unroll(learner.agent, batch, learner.n_actions)
        q = q[:, :-1][mask]  # [M, n, A]
        avail = batch["avail"][:, :-1][mask] > 0
        top2 = q.masked_fill(~avail, -float("inf")).topk(2, -1).values
        ok = torch.isfinite(top2).all(-1)
        gap = (top2[..., 0] - top2[..., 1])[ok]
        taken = q.gather(-1, batch["actions"][:, :-1][mask][..., None]).squeeze(-1)
        greedy = q.masked_fill(~avail, -float("inf")).argmax(-1)
    torch.set_rng_state(rng_state)
    return {"td": float(td.detach()), "reg": float(aux.detach()), "g_agent": _norm(g[: len(agent_p)]), "g_mixer": _norm(g[len(agent_p):]),
            "g_reg": _norm(g_reg), "w_mean": float(w.mean()), "w_ratio": float((w.max(-1).values / w.min(-1).values).mean()),
            "b_mean": float(b.mean()), "lam_mean": float(lam.mean()), "q_abs": float(taken.abs().mean()),
            "gap": float(gap.mean()), "attack": float((greedy >= 5).float().mean())}


COLS = ["update", "td", "reg", "g_agent", "g_mixer", "g_reg", "dtheta_agent", "w_mean", "w_ratio", "b_mean", "lam_mean",
        "q_abs", "gap", "attack"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default="qplex,dplex", help="alg[:field=value;field=value], comma separated")
    p.add_argument("--seeds", default="0")
    p.add_argument("--every", type=int, default=50, help="record every this many updates")
    p.add_argument("--t_max", type=int, default=60_000)
    a = p.parse_args()
    torch.set_num_threads(1)
    instrument(a.every, diagnose)
    summary = []
    for spec, seed, learner, hist, wall in run_variants(a.variants, a.seeds, a.t_max):
        print(f"\n== {spec} seed {seed}: {wall:.0f} s; greedy win rate at "
              + ", ".join(f"{h['t_env'] // 1000}k {h['test_win_rate']:.2f}" for h in hist))
        print(" ".join(f"{c:>10}" for c in COLS))
        for r in learner._diag:
            print(" ".join(f"{r[c]:>10.4g}" if isinstance(r[c], float) else f"{r[c]:>10}" for c in COLS))
        first, late = learner._diag[0], learner._diag[len(learner._diag) // 2:]
        summary.append((spec, seed, hist[-1]["test_win_rate"], max(h["test_win_rate"] for h in hist),
                        {c: float(np.mean([r[c] for r in late])) for c in COLS[1:]}, first))
    print("\n| variant | seed | final win | best win | " + " | ".join(f"{c} (2nd half)" for c in ("g_agent", "dtheta_agent", "w_mean", "w_ratio", "lam_mean", "q_abs", "gap", "attack")) + " |")
    for spec, seed, fw, bw, m, _ in summary:
        print(f"| {spec} | {seed} | {fw:.2f} | {bw:.2f} | " + " | ".join(f"{m[c]:.3g}" for c in ("g_agent", "dtheta_agent", "w_mean", "w_ratio", "lam_mean", "q_abs", "gap", "attack")) + " |")


if __name__ == "__main__":
    main()

"""Reference run of the OFFICIAL MEow toy code on MultiGoal (needs torch, gymnasium and a copy of the
official repo's `toy/` folder; not part of `make bench`, which runs only benchmarks/*.py).

It imports the official agent (`agents/meow.py: MEOW`, with its FlowPolicy, replay buffer and update) and
environment (`toy_envs/multi_goal.py: MultiGoal`) from --toy-dir and drives them the way the official
`modules/train_loop.py` does with gymnasium 0.29's one-environment vector env (autoreset in the same step;
the truncated episode's final observation stored as s'), with the hyperparameters of `toy/conf/base.yaml`
(4,000 steps, 1,000 uniform warm-up, batch 256, lr 1e-3, clip 30, gamma 0.9, tau 0.0005, alpha 2.5,
log sigma in [-2, 1]). Evaluation and plotting of the official loop are left out (they do not train).

Afterwards, in eval mode, at s = (0, 0): log pi(a|s) on the grid of meow_rl.demo.action_grid (161 x 161
over [-0.995, 0.995]^2), V(0) = min_k V_k(0), 4,000 sampled actions and the goals reached by 200 stochastic
rollouts of at most 100 steps started exactly at (0, 0). Saved to --out (.npz); summarise with
official_modes.py (meow-rl's venv), which measures them exactly like benchmarks/multigoal_modes.py.
With --states (x y pairs), after those: log pi(a|s) on the same grid, V(s) and 4,000 sampled actions at each
state (official_modes.py's table away from the origin). --save-policy keeps the trained policy's state_dict;
--load-policy skips training and measures a kept one (same --seed: same origin grid and V(0), other samples).

Checkpoints (so that a long run spans several commands): every --checkpoint-every steps, and when the script has
run --stop-after-minutes (then it exits with code 3 before measuring), it writes --checkpoint (default: --out with
_ckpt.pt): the policy, the target policy, Adam's state, the filled part of the replay buffer, the env's position and
time step, the current observation, torch's and numpy's global RNG states and the next step. --resume continues from
it; a run split this way ends with the same parameters, bit for bit, as the same run unsplit (check_resume.py).

    PYTHONPATH=... python run_official_toy.py --toy-dir PATH/meow/toy --seed 1 --out runs/official_s1.npz
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

p = argparse.ArgumentParser()
p.add_argument("--toy-dir", required=True, help="the official repo's toy/ folder")
p.add_argument("--seed", type=int, default=1)
p.add_argument("--steps", type=int, default=4000)
p.add_argument("--out", default="official.npz")
p.add_argument("--states", type=float, nargs="*", default=[], help="x y pairs: also measure pi(a|s) and V(s) there")
p.add_argument("--save-policy", default="", help="write the trained policy's state_dict (torch.save) here")
p.add_argument("--load-policy", default="", help="no training: load this state_dict (from --save-policy) and measure")
p.add_argument("--checkpoint", default="", help="checkpoint file (default: --out with _ckpt.pt instead of .npz)")
p.add_argument("--checkpoint-every", type=int, default=2000, help="write the checkpoint every N steps (0: never)")
p.add_argument("--stop-after-minutes", type=float, default=0.0,
               help="once the script has run this long: write the checkpoint and exit with code 3 (0: no limit)")
p.add_argument("--stop-at-step", type=int, default=0, help="write the checkpoint and exit (code 3) before this step")
p.add_argument("--resume", action="store_true", help="continue training from --checkpoint")
cli = p.parse_args()
t_script = time.time()
if len(cli.states) % 2:
    p.error(f"--states needs x y pairs, got {len(cli.states)} numbers")
if cli.resume and cli.load_policy:
    p.error("--resume trains; --load-policy does not: give one of them")
ckpt_path = cli.checkpoint or os.path.splitext(cli.out)[0] + "_ckpt.pt"
sys.path.insert(0, os.path.abspath(cli.toy_dir))
from agents.meow import MEOW  # noqa: E402  (official code)
from toy_envs.multi_goal import MultiGoal  # noqa: E402  (official code)

torch.set_num_threads(1)
torch.manual_seed(cli.seed)
np.random.seed(cli.seed)  # the official env and buffer draw from numpy's global generator
args = argparse.Namespace(buffer_size=1000000, steps=cli.steps, warmup_steps=1000, batch_size=256, device="cpu",
                          lr=1e-3, grad_clip=30, gamma=0.9, tau=0.0005, alpha=2.5, sigma_max=1.0, sigma_min=-2.0,
                          state_sizes=2, action_sizes=2, save_path=tempfile.mkdtemp())
agent = MEOW(args)
env = MultiGoal()
obs = np.asarray(env.reset()[0])[None]


def save_checkpoint(t_next, train_s):
    """Everything the loop below reads or changes at the start of step t_next (written atomically)."""
    b = agent.buffer
    state = dict(seed=cli.seed, t=t_next, train_s=train_s, policy=agent.policy.state_dict(),
                 policy_old=agent.policy_old.state_dict(), optim=agent.optim.state_dict(),
                 buffer={k: getattr(b, k)[:b.size].copy() for k in ("state", "action", "reward", "state_next", "done")},
                 buffer_idx=b.idx, buffer_size=b.size, env_observation=env.observation, env_timestep=env.timestep,
                 obs=obs, torch_rng=torch.get_rng_state(), numpy_rng=np.random.get_state())
    torch.save(state, ckpt_path + ".tmp")
    os.replace(ckpt_path + ".tmp", ckpt_path)  # a timeout during the write leaves the previous checkpoint


start, train_s = 0, 0.0
if cli.resume:  # after MEOW() and MultiGoal() have drawn their initial randomness, which the checkpoint overrides
    ck = torch.load(ckpt_path, weights_only=False)  # our own file: numpy arrays and numpy's RNG tuple inside
    if ck["seed"] != cli.seed:
        p.error(f"{ckpt_path} is seed {ck['seed']}, not --seed {cli.seed}")
    agent.policy.load_state_dict(ck["policy"])
    agent.policy_old.load_state_dict(ck["policy_old"])
    agent.optim.load_state_dict(ck["optim"])
    for k, v in ck["buffer"].items():
        getattr(agent.buffer, k)[:len(v)] = v
    agent.buffer.idx, agent.buffer.size = ck["buffer_idx"], ck["buffer_size"]
    env.observation, env.timestep, obs = ck["env_observation"], ck["env_timestep"], ck["obs"]
    torch.set_rng_state(ck["torch_rng"])
    np.random.set_state(ck["numpy_rng"])
    start, train_s = ck["t"], ck["train_s"]
    print(f"seed {cli.seed}: resumed {ckpt_path} at step {start} ({train_s:.0f} s trained before)", flush=True)
t0 = time.time()
for t in range(start, 0 if cli.load_policy else args.steps + 1):  # official: range(steps + 1), updates from t = warmup_steps on
    if (cli.stop_at_step and t == cli.stop_at_step) or \
            (cli.stop_after_minutes and time.time() - t_script > 60 * cli.stop_after_minutes):
        save_checkpoint(t, train_s + time.time() - t0)
        print(f"seed {cli.seed}: stopped before step {t} after {train_s + time.time() - t0:.0f} s of training; "
              f"checkpoint {ckpt_path} (continue with --resume)", flush=True)
        sys.exit(3)
    if t < args.warmup_steps:
        act = np.random.uniform(-1, 1, size=(1, 2)).astype(np.float32)
    else:
        agent.policy.eval()
        with torch.no_grad():
            act = agent.act(obs)[0].cpu().numpy()
    o2, r, term, trunc, _ = env.step(act[0])
    real_next = np.asarray(o2)[None].copy()
    next_obs = np.asarray(env.reset()[0])[None] if (term or trunc) else real_next
    agent.buffer.store(s=obs, a=act, r=r, s_=real_next, d=float(term))
    obs = next_obs
    if t >= args.warmup_steps:
        agent.update()
    if t % 2000 == 0 and t:
        print(f"seed {cli.seed}: step {t}, {train_s + time.time() - t0:.0f} s", flush=True)  # the rate, if cut
    if cli.checkpoint_every and (t + 1) % cli.checkpoint_every == 0 and t < args.steps:
        save_checkpoint(t + 1, train_s + time.time() - t0)
if cli.load_policy:
    agent.policy.load_state_dict(torch.load(cli.load_policy))
    print(f"seed {cli.seed}: loaded {cli.load_policy} (trained {args.steps} steps)")
else:
    print(f"seed {cli.seed}: trained {args.steps} steps in {train_s + time.time() - t0:.0f} s"
          + (f" ({time.time() - t0:.0f} s in this command)" if start else ""))
if cli.save_policy:
    torch.save(agent.policy.state_dict(), cli.save_policy)

pol = agent.policy
pol.eval()
goals = np.array(((5, 0), (-5, 0), (0, 5), (0, -5)), np.float32)
with torch.no_grad():
    g = np.linspace(-0.995, 0.995, 161)
    A1, A2 = np.meshgrid(g, g)
    grid = torch.tensor(np.stack([A1.ravel(), A2.ravel()], -1), dtype=torch.float32)
    logp = pol.log_prob(torch.zeros_like(grid), grid).numpy().reshape(A1.shape)
    v = pol.get_v(torch.zeros((2, 2)))[:, 0].numpy()  # (V_1(0), V_2(0)): the two shifts
    samples = pol.sample(4000, torch.zeros((4000, 2)))[0].numpy()
    pos, alive = np.zeros((200, 2), np.float32), np.ones(200, bool)
    for _ in range(100):
        a = pol.sample(200, torch.tensor(pos))[0].numpy()
        pos = np.where(alive[:, None], np.clip(pos + np.clip(a, -1, 1), -7, 7), pos)
        alive &= np.linalg.norm(pos[:, None] - goals[None], axis=-1).min(1) >= 1.0
d = np.linalg.norm(pos[:, None] - goals[None], axis=-1)
counts = np.bincount(d.argmin(1)[d.min(1) < 1.0], minlength=4)
states = np.asarray(cli.states, np.float32).reshape(-1, 2)
logp_s, v_s, samples_s = np.zeros((len(states),) + A1.shape), np.zeros(len(states)), np.zeros((len(states), 4000, 2))
with torch.no_grad():  # after the origin's draws, so the origin's measurements do not depend on --states
    for i, s in enumerate(torch.tensor(states)):
        logp_s[i] = pol.log_prob(s.repeat(len(grid), 1), grid).numpy().reshape(A1.shape)
        v_s[i] = pol.get_v(s.repeat(2, 1))[:, 0].numpy().min()  # as V(0): a batch of 2 is (V_1(s), V_2(s))
        samples_s[i] = pol.sample(4000, s.repeat(4000, 1))[0].numpy()
os.makedirs(os.path.dirname(os.path.abspath(cli.out)), exist_ok=True)
np.savez(cli.out, logp=logp, v0=v.min(), samples=samples, goals=counts, seed=cli.seed, steps=args.steps,
         states=states, logp_states=logp_s, v_states=v_s, samples_states=samples_s)
print(f"seed {cli.seed}: V(0) = {v.min():.1f}; goals (+x/-x/+y/-y) of 200: {counts.tolist()}")

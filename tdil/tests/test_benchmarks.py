"""benchmarks/surrogate_over_training.py: path scoring reads networks only and is right on the demonstration."""
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from tdil.demonstrations import record_demonstration
from tdil.envs import make_env
from tdil.imitation import Imitator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from surrogate_over_training import format_scores, score_paths, snapshot  # noqa: E402

from test_imitation import TINY, _params  # noqa: E402


def test_path_scores_leave_the_run_unchanged_and_the_demonstration_scores_one():
    env = make_env("Hopper-v5", terminate_when_unhealthy=False, max_episode_steps=60)
    env.action_space.seed(0)
    demo = record_demonstration(env, "Hopper-v5", lambda o: env.action_space.sample(), 0)
    cfg = dataclasses.replace(TINY, env_id="Hopper-v5", max_episode_steps=60, steps=120, eval_every=120,
                              expert_subsample=20)
    a = Imitator("tdil", cfg, demo, 0)  # each run built and trained in turn, as train.py does
    a.train(120)
    b = Imitator("tdil", cfg, demo, 0)
    b.train(80)
    rows = score_paths(b, demo, {"now": b.agent.actor}, [10000, 10001])
    m = snapshot(b, torch.as_tensor(env.reset(seed=10000)[0], dtype=torch.float32)[None], 40)
    b.train(120)
    assert torch.equal(_params(a), _params(b)) and a.result.returns == b.result.returns  # scoring drew no randomness
    assert [(r["path"], r["start"], r["steps"]) for r in rows] == [("demonstration", -1, 60), ("now", 10000, 60), ("now", 10001, 60)]
    d = rows[0]
    assert abs(d["ratio"] - 1.0) < 1e-5  # mean r over the demo's own next states / mean r(s'_E)
    assert np.isclose(d["ret"], demo.rewards.sum())
    healthy = (demo.next_obs[:, 0] > 0.7) & (np.abs(demo.next_obs[:, 1]) < 0.2)
    assert d["healthy"] == int(healthy.sum()) and np.isclose(d["z"], demo.next_obs[:, 0].mean(), atol=1e-5)
    assert np.isclose(d["vx"], demo.next_obs[:, 5].mean(), atol=1e-5) and np.isfinite(m["z"])
    # disc = sum_t gamma^t x critic reward (relative, x reward_scale)
    for row in rows[1:]:
        assert np.isfinite(row["ret"]) and 0 <= row["healthy"] <= 60 and row["disc"] >= 0
    text = format_scores(0, 80, rows, {"expert": 100.0, "random": 0.0})
    assert text.count("\n") == 1 + len(rows) and "demonstration" in text


def test_run_one_with_path_scores_is_the_same_run(tmp_path, capsys):
    import train
    from surrogate_over_training import run_one

    train.main(["--steps", "120", "--warmup-steps", "50", "--expert-steps", "120", "--seeds", "0", "--eval-episodes", "1",
                "--eval-every", "60", "--batch-size", "32", "--hidden", "16", "--disc-hidden", "16",
                "--reward-refresh-every", "40", "--out-dir", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"),
                "--no-progress", "--no-tensorboard", "--checkpoint-every", "0", "--methods", "tdil", "gail", "--workers", "1"])
    (run,) = (tmp_path / "runs").iterdir()
    capsys.readouterr()
    run_one(run, 120, 40, 5.0)
    plain = capsys.readouterr().out.splitlines()
    run_one(run, 120, 40, 5.0, ("gail-0", "tdil-0"), (80,), (10000,))
    scored = capsys.readouterr().out.splitlines()
    assert len(plain) == 2 and len(scored) == 2 + 2 * (2 + 4)  # steps 80 and 120, a score block each: demo, now, 2 actors
    assert [ln for ln in scored if ln[5:11] in ("    80", "   120") and "paths scored" not in ln] == plain
    evals = plain[1].split()[2].split("/")  # the re-run's evaluation at 120 equals the run's metrics.csv
    assert evals[0] == evals[1]


def test_rollout_returns_the_path_and_runs_without_mujoco_data():
    from behaviour import healthy_from_obs, rollout
    from tdil.envs import dims
    from tdil.networks import Actor

    torch.manual_seed(0)
    env = make_env("Hopper-v5", terminate_when_unhealthy=False, max_episode_steps=60)
    r = rollout(Actor(*dims(env), 16, 2), env, 10000)
    assert r["steps"] == 60 and r["next_obs"].shape == (60, 11) and r["next_obs"].dtype == np.float32
    assert r["start_obs"].shape == (11,) and np.array_equal(r["start_obs"], np.float32(env.reset(seed=10000)[0]))
    assert np.isclose(r["next_obs"][-1, 0], r["final_z"], atol=1e-6)  # obs[0] = qpos[1], the torso height
    assert r["healthy_steps"] == int(healthy_from_obs("Hopper-v5", r["next_obs"]).sum())
    assert np.isclose(r["distance"], r["mean_vx"] * 60 * env.unwrapped.dt, atol=1e-6)
    env = make_env("Pendulum-v1")  # no MuJoCo data: the path and return, NaN for the MuJoCo figures
    r = rollout(Actor(*dims(env), 16, 2), env, 10000)
    assert r["steps"] == 200 and r["next_obs"].shape == (200, 3) and r["return"] <= 0
    assert r["healthy_steps"] is None and all(np.isnan(r[k]) for k in ("distance", "final_z", "upside_down", "mean_vx"))

"""The main job end to end on a tiny budget: outputs, seeded determinism, exact resume, bad input."""
import json
import os

import numpy as np
import pytest

import train

TINY = ["--algos", "meow", "--seeds", "1", "2", "--total-steps", "200", "--warmup", "50", "--eval-every", "100",
        "--eval-episodes", "2", "--batch-size", "16", "--buffer-size", "256", "--meow.hidden", "16", "--meow.shift-hidden", "16",
        "--multigoal.no-enabled", "--no-progress", "--no-stochastic-eval"]


def _final(history):
    return [(r["seed"], r["env_steps"], r["eval_return"], r["loss"]) for r in history["meow"]]


def test_train_outputs_determinism_and_resume(tmp_path):
    out = str(tmp_path)
    h_full = train.main(TINY + ["--out-dir", out, "--name", "full"])
    run = [d for d in os.listdir(out) if d.startswith("full-")][0]
    files = set(os.listdir(os.path.join(out, run)))
    assert {"config.json", "metrics.csv", "learning_curves.png", "results.md", "ckpt_meow.pkl", "tb"} <= files
    assert os.listdir(os.path.join(out, run, "tb"))  # TensorBoard events written
    assert json.load(open(os.path.join(out, run, "config.json")))["total_steps"] == 200
    # same seeds -> same numbers
    h_again = train.main(TINY + ["--out-dir", out, "--name", "again"])
    assert _final(h_again) == _final(h_full)
    # stop half way, resume to the full budget: identical to the uninterrupted run
    train.main(TINY[:6] + ["100"] + TINY[7:] + ["--out-dir", out, "--name", "half"])
    half = [d for d in os.listdir(out) if d.startswith("half-")][0]
    h_resumed = train.main(["--resume", os.path.join(out, half), "--total-steps", "200"])
    assert _final(h_resumed) == _final(h_full)
    assert all(np.isfinite(r[2]) for r in _final(h_full))


def test_gym_backend_runs(tmp_path):
    h = train.main(["--backend", "gym", "--env-id", "Pendulum-v1", "--algos", "sac", "--seeds", "1", "--total-steps", "60",
                    "--warmup", "30", "--eval-every", "30", "--eval-episodes", "1", "--batch-size", "16",
                    "--sac.hidden", "16", "--buffer-size", "64", "--multigoal.no-enabled", "--no-progress", "--no-tensorboard",
                    "--out-dir", str(tmp_path)])
    rows = h["sac"]
    assert [r["env_steps"] for r in rows] == [30, 60]
    assert np.isfinite(rows[-1]["loss"]) and -2000 < rows[-1]["eval_return"] <= 0


@pytest.mark.parametrize("args,msg", [
    (["--total-steps", "150", "--eval-every", "100"], "multiple of eval_every"),
    (["--algos", "ppo"], "subset of"),
    (["--meow.sigma-min", "0.0", "--meow.sigma-max", "-1.0"], "sigma_min"),
    (["--backend", "gym", "--num-envs", "4", "--eval-every", "100"], "num_envs=1"),
])
def test_bad_config_rejected(tmp_path, args, msg):
    with pytest.raises(ValueError, match=msg):
        train.main(args + ["--out-dir", str(tmp_path), "--no-progress"])


def test_unknown_named_config():
    with pytest.raises(SystemExit):
        train.main(["--config", "paper-nonexistent"])


def test_brax_cpu_config_loads_and_validates():
    """The vectorised-Brax CPU config: parsed through train.py's --config, valid, the paper's Hopper MEow row
    (alpha 0.25, tau 0.005, 5k warm-up, s_max -0.3), update-to-data 1, a buffer that holds the whole run."""
    from configs import CONFIGS
    from meow_rl.config import validate

    cfg = train.parse_args(["--config", "brax-inverted-pendulum-cpu"])
    assert cfg == CONFIGS["brax-inverted-pendulum-cpu"]
    validate(cfg)
    assert (cfg.backend, cfg.env_id, cfg.brax_pipeline) == ("brax", "inverted_pendulum", "generalized")
    hopper = CONFIGS["paper-hopper"].meow
    assert (cfg.meow.alpha, cfg.meow.tau, cfg.meow.sigma_max, cfg.warmup) == (hopper.alpha, hopper.tau,
                                                                              hopper.sigma_max, 5_000)
    assert cfg.updates_per_step == cfg.num_envs  # UTD 1, the paper's ratio
    assert cfg.buffer_size >= cfg.total_steps and set(cfg.algos) == {"meow", "sac"}
    # overrides still validate: an eval interval that is not a multiple of the 8 envs is rejected
    with pytest.raises(ValueError, match="multiple of num_envs"):
        validate(train.parse_args(["--config", "brax-inverted-pendulum-cpu", "--eval-every", "2004"]))

import dataclasses
import json

import numpy as np
import pytest
import torch

from tdil.config import Config, load_run_config
from tdil.demonstrations import record_demonstration, save_demonstration
from tdil.envs import make_env
from tdil.imitation import Imitator

TINY = Config(hidden=16, disc_hidden=16, batch_size=32, warmup_steps=50, steps=120, eval_every=60, eval_episodes=1,
              reward_refresh_every=40, checkpoint_every=0)


def _params(im):
    return torch.cat([p.detach().flatten() for p in im.agent.actor.parameters()])


@pytest.mark.parametrize("method", ["tdil", "gail"])
def test_seeded_runs_are_identical_and_seeds_differ(demo, method):
    runs = []
    for s in (0, 0, 1):  # each run is built and trained in turn, as train.py does
        runs.append(Imitator(method, TINY, demo, s))
        runs[-1].train(100)
    a, b, c = runs
    assert torch.equal(_params(a), _params(b))
    assert a.result.returns == b.result.returns
    assert not torch.equal(_params(a), _params(c))


@pytest.mark.parametrize("method", ["tdil", "tdil_irl", "airl", "pwil"])
def test_checkpoint_resume_restores_the_run(demo, method, tmp_path):
    a = Imitator(method, TINY, demo, 0)
    a.train(80)
    a.save(tmp_path / "ck.pt")
    b = Imitator(method, TINY, demo, 0)
    b.load(tmp_path / "ck.pt")
    assert b.t == 80 and b.buf.size == a.buf.size
    assert torch.equal(_params(a), _params(b))
    np.testing.assert_array_equal(a.buf.reward[: a.buf.size], b.buf.reward[: b.buf.size])
    assert b.result.returns == a.result.returns
    b.train(TINY.steps)
    assert b.t == TINY.steps and len(b.result.returns) == 2


def test_cached_and_per_batch_rewards_agree_right_after_a_refresh(demo):
    im = Imitator("tdil", TINY, demo, 0)
    im.train(80)  # refreshed at step 80
    n = im.buf.size
    fresh = im.tdil_reward(torch.as_tensor(im.buf.next_obs[:n])).numpy()
    np.testing.assert_allclose(im.buf.reward[:n], fresh, rtol=1e-5, atol=1e-5)


def test_expert_subsample_is_an_unbiased_rescaled_sum(demo):
    cfg = dataclasses.replace(TINY, expert_subsample=50)
    im = Imitator("tdil", cfg, demo, 0)
    assert len(im.reward_states) == 50 and im.reward_scale == len(demo) / 50


def test_train_py_end_to_end_and_bad_demo(tmp_path, demo):
    import train

    args = ["--steps", "120", "--warmup-steps", "50", "--expert-steps", "120", "--seeds", "0", "--bc-steps", "20",
            "--eval-episodes", "1", "--eval-every", "60", "--batch-size", "32", "--hidden", "16", "--disc-hidden", "16",
            "--reward-refresh-every", "40", "--out-dir", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"),
            "--no-progress", "--no-tensorboard", "--checkpoint-every", "60"]
    table = train.main(args + ["--methods", "tdil", "bc", "gail", "pwil", "--workers", "2"])
    assert set(table) == {"tdil", "bc", "gail", "pwil"}
    assert {"auc", "half_budget"} <= set(table["tdil"]) and "auc" not in table["bc"]
    (run,) = (tmp_path / "runs").iterdir()
    # every job seeds itself: two worker processes give the same runs as one process, one job after another
    serial = train.main(args + ["--methods", "tdil", "bc", "gail", "pwil", "--workers", "1", "--out-dir", str(tmp_path / "serial")])
    assert serial == table
    (serial_run,) = (tmp_path / "serial").iterdir()
    assert (serial_run / "metrics.csv").read_text() == (run / "metrics.csv").read_text()
    for f in ("config.json", "metrics.csv", "results.md", "learning_curves.png", "demonstration.npz", "levels.json"):
        assert (run / f).exists(), f
    assert json.loads((run / "config.json").read_text())["steps"] == 120
    saved = load_run_config(run)  # what the benchmarks re-run from: lists come back as tuples
    assert saved.steps == 120 and saved.methods == ("tdil", "bc", "gail", "pwil") and saved.seeds == (0,)
    # resume: every job is finished, so it reloads them and reproduces the table
    again = train.main(args + ["--methods", "tdil", "bc", "gail", "pwil", "--resume", str(run)])
    assert again == table
    # a demonstration of another environment is refused
    env = make_env("Pendulum-v1")
    wrong = record_demonstration(env, "Pendulum-v1", lambda o: env.action_space.sample(), 0)
    wrong.env_id = "MountainCarContinuous-v0"
    save_demonstration(tmp_path / "wrong.npz", wrong)
    with pytest.raises(ValueError, match="MountainCar"):
        train.main(args + ["--methods", "tdil", "--demo-path", str(tmp_path / "wrong.npz")])


def test_tdil_runs_on_a_mujoco_task_with_the_papers_env_settings():
    env = make_env("Hopper-v5", terminate_when_unhealthy=False, max_episode_steps=60)
    assert env.unwrapped._terminate_when_unhealthy is False
    env.action_space.seed(0)
    demo = record_demonstration(env, "Hopper-v5", lambda o: env.action_space.sample(), 0)
    assert len(demo) == 60 and demo.observations.shape == (61, 11)
    cfg = dataclasses.replace(TINY, env_id="Hopper-v5", max_episode_steps=60, steps=90, eval_every=90)
    im = Imitator("tdil", cfg, demo, 0)
    res = im.train(cfg.steps)
    assert im.t == 90 and len(res.returns) == 1 and np.isfinite(res.returns[0])
    assert np.isfinite(im.buf.reward[: im.buf.size]).all() and (im.buf.reward[: im.buf.size] >= 0).all()


def test_every_named_config_loads_and_the_paper_tasks_share_one_protocol():
    import train

    names = sorted(p.stem.replace("_", "-") for p in (train.HERE / "configs").glob("*.py") if not p.stem.startswith("_"))
    cfgs = {n: train.load_named_config(n) for n in names}
    assert {"quick", "paper-hopper", "paper-door"} <= set(cfgs)
    tasks = {"hopper": "Hopper-v5", "walker2d": "Walker2d-v5", "ant": "Ant-v5",
             "halfcheetah": "HalfCheetah-v5", "humanoid": "Humanoid-v5"}
    for task, env_id in tasks.items():
        cfg = cfgs[f"paper-{task}"]
        assert cfg.env_id == env_id and cfg.config == f"paper-{task}"
        assert dataclasses.replace(cfg, env_id="", config="") == dataclasses.replace(cfgs["paper-hopper"], env_id="", config="")
    assert cfgs["paper-hopper"].steps == 3_000_000 and cfgs["paper-hopper"].tau == 1e-4
    with pytest.raises(SystemExit, match="unknown config"):
        train.load_named_config("paper-nope")


def test_tdil_takes_a_bc_step_and_tdil_irl_does_not_as_in_the_official_commands(demo):
    """TDIL (+BC) ends each update with the BC step; the official TDIL+IRL command runs with --no_bc."""
    logs = {}
    for method in ("tdil", "tdil_irl"):
        im = Imitator(method, TINY, demo, 0)
        im.train(TINY.warmup_steps + 1)
        logs[method] = im.update()
    assert "bc_loss" in logs["tdil"] and "bc_loss" not in logs["tdil_irl"]
    im = Imitator("tdil_irl", dataclasses.replace(TINY, irl_bc=True), demo, 0)
    im.train(TINY.warmup_steps + 1)
    assert "bc_loss" in im.update()


def test_stop_after_minutes_checkpoints_expert_and_jobs_and_resume_finishes(tmp_path, monkeypatch, capsys):
    """A time-limited command (--stop-after-minutes) saves the expert's SAC run (cache) or the unfinished jobs
    (jobs/*.pt) and exits; the next command resumes from those checkpoints. A fake clock (1 s per call) makes
    the stop deterministic."""
    import time

    import train

    clock = iter(range(10**9))
    monkeypatch.setattr(time, "time", lambda: float(next(clock)))
    cache = tmp_path / "cache"
    args = ["--steps", "120", "--warmup-steps", "50", "--expert-steps", "120", "--seeds", "0", "--bc-steps", "20",
            "--eval-episodes", "1", "--eval-every", "60", "--batch-size", "32", "--hidden", "16", "--disc-hidden", "16",
            "--reward-refresh-every", "40", "--cache-dir", str(cache), "--no-progress", "--no-tensorboard",
            "--checkpoint-every", "1000", "--workers", "1", "--methods", "tdil", "bc"]
    run = tmp_path / "run"
    out = train.main(args + ["--resume", str(run), "--stop-after-minutes", "1"])  # ~60 fake seconds
    assert out["stopped"].startswith("expert SAC at step")
    (ckpt,) = (cache / "experts").glob("*-train.pt")
    t_stop = torch.load(ckpt, weights_only=False)["t"]
    assert 0 < t_stop < 120 and not list((cache / "experts").glob("*.npz"))
    # the expert resumes, finishes, records the demo; then the jobs stop at the deadline with checkpoints
    out = train.main(args + ["--resume", str(run), "--stop-after-minutes", "3"])
    assert f"resumed SAC at step {t_stop}" in capsys.readouterr().out
    assert not ckpt.exists() and list((cache / "experts").glob("*.npz"))
    assert out["stopped"] == "tdil-0", out
    t_job = torch.load(run / "jobs" / "tdil-0.pt", weights_only=False)["t"]
    assert 0 < t_job < 120 and not (run / "jobs" / "tdil-0.json").exists()
    # no limit: everything finishes from the checkpoints
    table = train.main(args + ["--resume", str(run)])
    assert set(table) == {"tdil", "bc"} and not (run / "jobs" / "tdil-0.pt").exists()
    assert json.loads((run / "jobs" / "tdil-0.json").read_text())["steps"] == [60, 120]


@pytest.mark.parametrize("task", ["walker2d", "ant", "humanoid"])
def test_paper_locomotion_configs_build_step_and_update(task):
    """The paper-<task> configs at tiny widths: the env is built with the paper's settings (no unhealthy termination),
    a TDIL run takes its warm-up and update steps (per-batch rewards, expert critic step, BC) with finite rewards."""
    import train

    cfg = train.load_named_config(f"paper-{task}")
    cfg = dataclasses.replace(cfg, hidden=16, disc_hidden=16, batch_size=16, warmup_steps=30, steps=60, eval_every=60,
                              eval_episodes=1, max_episode_steps=40, checkpoint_every=0)
    env = make_env(cfg.env_id, cfg.terminate_when_unhealthy, cfg.max_episode_steps)
    assert env.unwrapped._terminate_when_unhealthy is False
    env.action_space.seed(0)
    demo = record_demonstration(env, cfg.env_id, lambda o: env.action_space.sample(), 0)
    assert len(demo) == 40  # never cut short by a fall
    im = Imitator("tdil", cfg, demo, 0)
    res = im.train(cfg.steps)
    logs = im.update()
    assert im.t == 60 and len(res.returns) == 1 and np.isfinite(res.returns[0])
    assert {"disc_loss", "tdil_reward", "bc_loss"} <= set(logs) and all(np.isfinite(v) for v in logs.values())


@pytest.mark.parametrize("terminate", [True, False])
def test_sac_expert_stores_terminal_done_flags_only_with_unhealthy_termination(terminate):
    """The expert's SAC (`sac_env`) cuts the bootstrap where Hopper terminates; a random Hopper falls within 200 steps."""
    cfg = dataclasses.replace(TINY, env_id="Hopper-v5", terminate_when_unhealthy=terminate, warmup_steps=200, steps=200)
    im = Imitator("sac_env", cfg, None, 0)
    im.train(200)
    assert (im.buf.done[: im.buf.size].sum() > 0) == terminate


@pytest.mark.parametrize("flag, expert_term", [([], True), (["--no-expert-terminate-when-unhealthy"], False)])
def test_expert_trains_with_termination_and_the_demo_is_recorded_without(tmp_path, monkeypatch, flag, expert_term):
    """Hopper: the expert's SAC env terminates when unhealthy (official sac.yml) unless turned off; the demonstration
    is always recorded in the imitators' env (no termination: all max_episode_steps steps); the cache tag says which."""
    import train

    envs = []

    class Recording(Imitator):
        def __init__(self, method, cfg, demo, seed):
            super().__init__(method, cfg, demo, seed)
            envs.append((method, self.env.unwrapped._terminate_when_unhealthy))

    monkeypatch.setattr(train, "Imitator", Recording)
    cache = tmp_path / "cache"
    train.main(["--env-id", "Hopper-v5", "--max-episode-steps", "60", "--expert-steps", "120", "--warmup-steps", "50",
                "--methods", "bc", "--seeds", "0", "--bc-steps", "5", "--eval-episodes", "1", "--batch-size", "32",
                "--hidden", "16", "--out-dir", str(tmp_path / "runs"), "--cache-dir", str(cache), "--no-progress",
                "--no-tensorboard", "--workers", "1"] + flag)
    assert envs == [("sac_env", expert_term)]
    (demo_file,) = (cache / "experts").glob("*.npz")
    assert demo_file.name.endswith("-expertterm1.npz") == expert_term
    demo = np.load(demo_file)
    assert len(demo["actions"]) == 60


# official config_files/sac.yml of github stanl1y/tdil: the SAC expert's settings
OFFICIAL_EXPERT = dict(tau=5e-3, batch_size=512, warmup_steps=10_000, hidden=256, layers=3, lr=3e-4, actor_lr=3e-4,
                       critic_lr=3e-4, alpha_lr=3e-4, gamma=0.99, fixed_log_alpha=None)


@pytest.mark.parametrize("task", ["hopper", "walker2d", "ant", "halfcheetah", "humanoid", "door"])
def test_paper_configs_train_the_expert_with_the_official_sac_yml_values(task):
    """Each paper config's expert resolves to sac.yml (tau 0.005, batch 512, 10000 warm-up, 3 x 256, auto alpha, unhealthy
    termination where the task has it) while its imitators keep neighborhood_sac.yml's tau 1e-4 / batch 256 / 2000 warm-up."""
    import train

    cfg = train.load_named_config(f"paper-{task}")
    expert = train.expert_config(cfg)
    assert {k: getattr(expert, k) for k in OFFICIAL_EXPERT} == OFFICIAL_EXPERT
    assert expert.steps == cfg.expert_steps and expert.terminate_when_unhealthy == (task not in ("halfcheetah", "door"))
    assert (cfg.tau, cfg.batch_size, cfg.warmup_steps, cfg.terminate_when_unhealthy) == (1e-4, 256, 2000, False)
    # a fixed imitation alpha from the command line (the paper's per-task alternative) does not reach the expert
    assert train.expert_config(dataclasses.replace(cfg, fixed_log_alpha=-4.6)).fixed_log_alpha is None
    # sac.yml's rates equal the single default lr, so the cache tag is the one written before the rates were separate
    assert "-lr" not in train.expert_tag(cfg, expert)


def _opt_settings(opt):
    return [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]


def test_default_learning_rates_give_the_optimisers_of_the_single_lr():
    """With actor_lr / critic_lr / alpha_lr unset (every config), each SAC optimiser has exactly the settings the single
    `lr` gave before they were separate: Adam(lr=cfg.lr, foreach=True) for actor, critics and temperature."""
    for cfg in (Config(), TINY, dataclasses.replace(TINY, lr=1e-3)):
        im = Imitator("sac_env", cfg, None, 0)
        agent = im.agent
        for opt, params in ((agent.actor_opt, agent.actor.parameters()), (agent.critic_opt, agent.critic.parameters()),
                            (agent.alpha_opt, [agent.log_alpha])):
            before = torch.optim.Adam(list(params), lr=cfg.lr, foreach=True)
            assert _opt_settings(opt) == _opt_settings(before)


def _lrs(agent):
    return tuple(opt.param_groups[0]["lr"] for opt in (agent.actor_opt, agent.critic_opt, agent.alpha_opt))


def test_separate_learning_rates_reach_their_optimisers_and_the_expert(tmp_path):
    """--actor-lr / --critic-lr / --alpha-lr set the imitators' SAC optimisers, --expert-*-lr the expert's (unset: the
    imitators' value); a non-default expert rate gets its own cache tag."""
    import train

    cfg = train.parse_config(["--critic-lr", "1e-3", "--alpha-lr", "2e-3", "--expert-actor-lr", "1e-4", "--hidden", "16"])
    imitator = Imitator("sac_env", cfg, None, 0).agent
    assert _lrs(imitator) == (3e-4, 1e-3, 2e-3)
    ecfg = train.expert_config(cfg)
    assert _lrs(Imitator("sac_env", ecfg, None, 0).agent) == (1e-4, 1e-3, 2e-3)
    assert train.expert_tag(cfg, ecfg).endswith("-demo4-lr0.0001-0.001-0.002")
    assert "-lr" not in train.expert_tag(train.parse_config([]), train.expert_config(train.parse_config([])))


def test_cpu_configs_train_the_expert_with_the_imitators_settings():
    import train

    for name in ("quick", "hopper-cpu", "halfcheetah-cpu"):
        cfg = train.load_named_config(name)
        expert = train.expert_config(cfg)
        assert (expert.tau, expert.batch_size, expert.warmup_steps, expert.hidden) == (cfg.tau, cfg.batch_size, cfg.warmup_steps, cfg.hidden)


def test_expert_fields_reach_the_experts_sac_and_its_cache_tag(tmp_path, monkeypatch):
    """--expert-tau/-batch-size/-warmup-steps/-hidden set the expert's SAC (Polyak rate, sampled batch, first update,
    width) and its cache tag; the imitators keep --tau/--batch-size/--hidden."""
    import train

    seen = []

    class Recording(Imitator):
        def __init__(self, method, cfg, demo, seed):
            super().__init__(method, cfg, demo, seed)
            self.first_update, self.batches = None, set()
            sample_idx = self.buf.sample_idx
            self.buf.sample_idx = lambda n, rng: self.batches.add(n) or sample_idx(n, rng)
            seen.append(self)

        def update(self):
            self.first_update = self.first_update or self.t
            return super().update()

    monkeypatch.setattr(train, "Imitator", Recording)
    cache = tmp_path / "cache"
    train.main(["--max-episode-steps", "40", "--expert-steps", "80", "--warmup-steps", "20", "--batch-size", "16",
                "--hidden", "16", "--tau", "0.01", "--expert-tau", "0.02", "--expert-batch-size", "24",
                "--expert-warmup-steps", "30", "--expert-hidden", "8", "--methods", "sac_env", "--steps", "40",
                "--eval-every", "40", "--seeds", "0", "--eval-episodes", "1", "--out-dir", str(tmp_path / "runs"),
                "--cache-dir", str(cache), "--no-progress", "--no-tensorboard", "--workers", "1"])
    expert, imitator = seen
    assert (expert.agent.cfg.tau, expert.batches, expert.first_update, expert.agent.actor.net[0].out_features) == (0.02, {24}, 31, 8)
    assert (imitator.agent.cfg.tau, imitator.batches, imitator.first_update, imitator.agent.actor.net[0].out_features) == (0.01, {16}, 21, 16)
    (demo_file,) = (cache / "experts").glob("*.npz")
    assert demo_file.name == "Pendulum-v1-sac80-h8x3-tau0.02-b24-w30-demo4.npz"

"""The main job end to end at toy size: outputs, checkpoints, and resume."""
import json

import numpy as np
import pytest
import torch

import train

TINY = ["--views-per-lighting", "3", "--test-views-per-lighting", "1", "--capture-width", "16", "--capture-height", "12",
        "--nerf-iters", "20", "--nerf-batch-rays", "128", "--nerf-voxel", "0.5", "--nerf-samples", "16", "--nerf-checkpoint-every", "10",
        "--obs-width", "16", "--obs-height", "12", "--max-steps", "8", "--env-nerf-samples", "8",
        "--dagger-iters", "2", "--dagger-envs", "2", "--dagger-steps", "4", "--dagger-epochs", "1",
        "--ppo-updates", "1", "--ppo-envs", "2", "--ppo-steps", "4", "--eval-episodes", "2"]


def test_main_job_and_resume(tmp_path):
    cfg = train.parse_config(TINY + ["--out-dir", str(tmp_path)])
    res = train.main(cfg)
    run = next(tmp_path.iterdir())
    for f in ("config.json", "environment.json", "results.json", "results.md", "nerf.pt", "mesh.obj", "course.png", "nerf_vs_gt.png",
              "lighting_interpolation.png", "mesh.png", "trajectories.png", "curves.png", "metrics/nerf.csv",
              "data/transforms.json", "policies/dagger-sim.pt", "policies/ppo-sim.pt"):
        assert (run / f).exists(), f
    assert set(res["validation"]["policies"]) >= {"dagger-sim", "dagger-nerf-day", "dagger-nerf-randlight", "ppo-sim"}
    assert torch.load(run / "nerf.pt", weights_only=False)["step"] == 20
    # resume a run whose NeRF stopped at its step-10 checkpoint and whose policies are gone
    ck = torch.load(run / "nerf.pt", weights_only=False)
    sim_agents = {n: torch.load(run / "policies" / f"{n}.pt")["policy"] for n in ("ppo-sim", "dagger-sim")}
    ck["step"] = 10
    torch.save(ck, run / "nerf.pt")
    (run / "policies" / "ppo-sim.pt").unlink()
    (run / "policies" / "dagger-sim.pt").unlink()
    res2 = train.main(train.parse_config(["--resume", str(run)]))
    ck2 = torch.load(run / "nerf.pt", weights_only=False)
    assert ck2["step"] == 20
    assert not torch.equal(ck2["model"]["grid"], ck["model"]["grid"])  # steps 10..19 were trained again
    assert (run / "policies" / "ppo-sim.pt").exists() and (run / "policies" / "dagger-sim.pt").exists()
    assert set(res2["validation"]["policies"]) == set(res["validation"]["policies"])
    # the sim agents do not depend on the NeRF stage (retrained 10..19 above, other random draws): same seed, same agents
    for n, sd in sim_agents.items():
        sd2 = torch.load(run / "policies" / f"{n}.pt")["policy"]
        assert all(torch.equal(sd[k], sd2[k]) for k in sd), n
    assert json.loads((run / "config.json").read_text())["nerf_iters"] == 20
    env = json.loads((run / "environment.json").read_text())  # this invocation's, the first one's kept
    assert env["torch_threads"] == torch.get_num_threads() and [set(e) for e in env["earlier"]] == [set(env) - {"earlier"}]


def test_environment_record(tmp_path, monkeypatch):
    """environment(): every field that decides the float rounding, JSON-serialisable; the rounding variables only
    when set; no git commit (and no failure) outside a git tree."""
    from driveenv_nerf.environment import ROUNDING_ENV_VARS, environment
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    env = json.loads(json.dumps(environment()))
    assert {"python", "torch", "numpy", "torch_threads", "cpu_capability", "cpu", "cuda_device", "env", "git_commit"} <= set(env)
    assert env["torch"] == torch.__version__ and env["numpy"] == np.__version__
    assert env["env"]["ATEN_CPU_CAPABILITY"] == "avx2" and "ONEDNN_MAX_CPU_ISA" not in env["env"]
    assert set(env["env"]) <= set(ROUNDING_ENV_VARS)
    assert environment(tmp_path)["git_commit"] is None


AGENTS = ("dagger-sim", "dagger-nerf-day", "dagger-nerf-randlight", "ppo-sim")


def test_more_agent_seeds_on_a_finished_runs_nerf(tmp_path, monkeypatch):
    """--resume <finished run> --agent-seeds 0,1,2: the NeRF is reused (not retrained), seed 0's agents and evaluation
    are kept, seeds 1 and 2 train other agents, and results.json / results.md give mean +- std over the three seeds."""
    train.main(train.parse_config(TINY + ["--out-dir", str(tmp_path)]))
    run = next(tmp_path.iterdir())
    nerf_before, nerf_log = (run / "nerf.pt").read_bytes(), (run / "metrics" / "nerf.csv").read_text()
    seed0 = {n: (run / "policies" / f"{n}.pt").read_bytes() for n in AGENTS}
    calls = []
    evaluate = train.evaluate
    monkeypatch.setattr(train, "evaluate", lambda *a, **k: calls.append(1) or evaluate(*a, **k))
    res = train.main(train.parse_config(["--resume", str(run), "--agent-seeds", "0,1,2"]))
    assert (run / "nerf.pt").read_bytes() == nerf_before and (run / "metrics" / "nerf.csv").read_text() == nerf_log
    assert {n: (run / "policies" / f"{n}.pt").read_bytes() for n in AGENTS} == seed0  # seed 0 not retrained
    weights = {k: {n: torch.load(run / "policies" / ("" if k == 0 else f"seed-{k}") / f"{n}.pt")["policy"] for n in AGENTS} for k in (0, 1, 2)}
    for n in AGENTS:  # three seeds, three different agents of each kind
        for a, b in ((0, 1), (0, 2), (1, 2)):
            assert not all(torch.equal(weights[a][n][p], weights[b][n][p]) for p in weights[a][n]), (n, a, b)
    assert (run / "metrics" / "dagger-sim-seed2.csv").exists() and (run / "trajectories-seed1.png").exists()
    assert set(res["agent_seeds"]) == {"0", "1", "2"} and res["validation"] == res["agent_seeds"]["0"]["validation"]
    n_pol = len(res["validation"]["policies"])
    assert len(calls) == 1 + 2 * (3 * n_pol + 3 * 3)  # the expert, then seeds 1 and 2 only: seed 0's evaluation was kept
    summary = res["agent_seed_summary"]
    assert summary["seeds"] == [0, 1, 2]
    gaps = [res["agent_seeds"][k]["validation"]["NeRF env"]["mean_abs_gap_to_real"] for k in "012"]
    assert summary["simulators"]["NeRF env"]["mean_abs_gap_to_real"] == pytest.approx([np.mean(gaps), np.std(gaps, ddof=1)])
    md = (run / "results.md").read_text()
    assert "Over agent seeds 0, 1, 2" in md and "## Validation, agent seed 2" in md
    assert json.loads((run / "config.json").read_text())["agent_seeds"] == "0,1,2"


@pytest.mark.parametrize("bad", ["", "0,0", "-1", "1.5", "a", "0,,1", "1 2"])
def test_bad_agent_seeds_are_rejected(bad):
    with pytest.raises(SystemExit):
        train.parse_config(["--agent-seeds", bad])


@pytest.mark.parametrize("bad", ["0", "-0.1", "nan"])
def test_bad_depth_sigma_is_rejected(bad):
    with pytest.raises(SystemExit):
        train.parse_config(["--depth-sigma", bad])


def test_depth_sigma_reaches_the_nerf_loss_and_survives_resume(tmp_path, monkeypatch, capsys):
    """--depth-sigma is the TrainConfig.depth_sigma train_step's depth prior gets, config.json keeps it for --resume,
    and a run from before the option (no depth_sigma in its config.json) resumes with the old fixed 0.25 m."""
    assert train.Config.depth_sigma == train.NR.TrainConfig.depth_sigma == 0.25
    with pytest.raises(SystemExit):
        train.parse_config(["--help"])
    assert "depth prior's spread" in capsys.readouterr().out

    class Stop(Exception):
        pass

    seen = []

    def first_step(model, opt, batch, tc, step):
        seen.append((tc.w_depth, tc.depth_sigma, len(batch)))
        raise Stop

    monkeypatch.setattr(train.NR, "train_step", first_step)
    with pytest.raises(Stop):
        train.main(train.parse_config(TINY + ["--out-dir", str(tmp_path), "--depth-sigma", "0.0625"]))
    assert seen == [(0.05, 0.0625, 5)]  # the depth prior on, with its known depths in the batch
    run = next(tmp_path.iterdir())
    assert train.parse_config(["--resume", str(run)]).depth_sigma == 0.0625
    saved = json.loads((run / "config.json").read_text())
    del saved["depth_sigma"]
    (run / "config.json").write_text(json.dumps(saved))
    assert train.parse_config(["--resume", str(run)]).depth_sigma == 0.25


def test_summary_over_agent_seeds():
    def seed(sim_gap, nerf_gap, real):
        return {"validation": {"policies": ["a", "b"], "success": {"standard sim": [1.0, 1.0], "NeRF env": [1.0, 0.0], "real world": real},
                               "standard sim": {"mean_abs_gap_to_real": sim_gap, "pearson": 0.0, "spearman": 0.0},
                               "NeRF env": {"mean_abs_gap_to_real": nerf_gap, "pearson": 1.0, "spearman": 1.0}},
                "lighting": {"a": {"day": real[0]}}}
    s = train.summarise_agent_seeds({0: seed(0.3, 0.1, [1.0, 0.5]), 4: seed(0.1, 0.2, [0.5, 0.0])})
    assert s["seeds"] == [0, 4]
    np.testing.assert_allclose(s["success"]["real world"], [[0.75, 0.5 ** 0.5 / 2], [0.25, 0.5 ** 0.5 / 2]])
    assert s["gap_sim_minus_nerf"] == pytest.approx([0.05, 0.15 * 2 ** 0.5]) and s["gap_sim_minus_nerf_per_seed"] == pytest.approx([0.2, -0.1])
    assert s["lighting"]["a"]["day"] == pytest.approx([0.75, 0.5 ** 0.5 / 2])
    with pytest.raises(ValueError):
        train.summarise_agent_seeds({0: seed(0.3, 0.1, [1.0, 0.5])})


def test_resume_agent_reads_finished_interrupted_and_fresh_agents(tmp_path):
    """train.resume_agent, the DAgger and PPO resume path: a fresh agent starts at 0 from make_policy's weights; an
    interrupted one goes on after its checkpoint's iteration / update with the checkpoint's weights and state; a
    finished one (its final file wins over a stale checkpoint) has nothing left to train."""
    hw, final, ck = (12, 16), tmp_path / "agent.pt", tmp_path / "agent-ckpt.pt"
    same = lambda a, b: all(torch.equal(a.state_dict()[p], b.state_dict()[p]) for p in a.state_dict())
    pol, start, saved = train.resume_agent(hw, 5, final, ck, "iteration")
    assert start == 0 and saved is None and same(pol, train.make_policy(hw, 5))
    interrupted, X = train.make_policy(hw, 6), np.arange(6.0).reshape(3, 2)
    torch.save({"policy": interrupted.state_dict(), "iteration": 1, "X": X, "Y": X[:, :1]}, ck)
    pol, start, saved = train.resume_agent(hw, 5, final, ck, "iteration")
    assert start == 2 and same(pol, interrupted) and not same(pol, train.make_policy(hw, 5))
    np.testing.assert_array_equal(saved["X"], X)
    torch.save({"policy": interrupted.state_dict(), "update": 4, "opt": {"state": {}}}, ck)
    pol, start, saved = train.resume_agent(hw, 5, final, ck, "update")
    assert start == 5 and saved["opt"] == {"state": {}} and same(pol, interrupted)
    finished = train.make_policy(hw, 7)
    torch.save({"policy": finished.state_dict()}, final)
    pol, start, saved = train.resume_agent(hw, 5, final, ck, "update")
    assert start is None and saved is None and same(pol, finished)

"""The main job end to end at toy size: outputs, checkpoints, and resume."""
import json

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
    for f in ("config.json", "results.json", "results.md", "nerf.pt", "mesh.obj", "course.png", "nerf_vs_gt.png",
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

"""Each world's gymnasium contract, the vehicle model, the expert and start-state validation."""
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from driveenv_nerf import nerf as NR
from driveenv_nerf.agents import PurePursuitExpert, evaluate
from driveenv_nerf.envs import BatchDrive, DriveEnv, EnvConfig, NeRFWorld, RealWorld, SimWorld
from driveenv_nerf.geometry import ObstacleMap

CFG = EnvConfig(obs_width=16, obs_height=12, max_steps=60)


def make_world(kind, course):
    if kind == "sim":
        return SimWorld(course, CFG)
    if kind == "real":
        return RealWorld(course, CFG, "night")
    torch.manual_seed(0)
    model = NR.GridNeRF(course.aabb, 3, NR.NeRFConfig(voxel=0.5, n_features=4, appearance_dim=4, hidden=16, n_samples=16))
    return NeRFWorld(model, ObstacleMap.from_boxes(course.boxes, course.aabb), CFG,
                     lambda rng, n: torch.as_tensor(rng.normal(size=(n, 4)), dtype=torch.float32), n_samples=16)


@pytest.mark.parametrize("kind", ["sim", "real", "nerf"])
def test_check_env(kind, course):
    env = DriveEnv(course, make_world(kind, course), CFG)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert obs.shape == (12, 16, 3) and obs.dtype == np.uint8
    obs, r, term, trunc, info = env.step(np.array([0.0], dtype=np.float32))
    assert r > 0.2 and not term  # driving straight from the start makes progress (speed * dt = 0.25 m)


def test_bicycle_dynamics(course):
    core = BatchDrive(course, SimWorld(course, CFG), CFG, n=2)
    st = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    nxt = core.dynamics(st, np.array([0.0, 1.0]))
    assert np.allclose(nxt[0], [0.25, 0.0, 0.0])
    assert np.isclose(nxt[1, 2], 1.0 / 0.4 * np.tan(0.5) * 0.25)  # yaw rate v tan(delta) / L


def test_bad_start_states_raise(course):
    env = DriveEnv(course, SimWorld(course, CFG), CFG)
    with pytest.raises(ValueError, match="off the road"):
        env.reset(options={"state": [0.0, 5.0, 0.0]})
    with pytest.raises(ValueError, match="off the road|outside"):
        env.reset(options={"state": [40.0, 0.0, 0.0]})
    with pytest.raises(ValueError, match="collides"):
        env.reset(options={"state": [2.8, -0.45, 0.0]})  # inside the first barrier


def test_expert_succeeds_and_straight_driving_fails(course):
    expert = PurePursuitExpert(course, CFG.wheelbase, CFG.max_steer)
    env = BatchDrive(course, SimWorld(course, CFG), CFG, 8)
    res = evaluate(env, lambda o, s: expert(s), 8, seed=0, record=True)
    assert res["success"] == 1.0
    assert res["trajectories"].shape[0] == 8
    res0 = evaluate(BatchDrive(course, SimWorld(course, CFG), CFG, 8), lambda o, s: np.zeros(len(s)), 8, seed=0)
    assert res0["success"] == 0.0 and res0["collision"] + res0["offroad"] == 1.0

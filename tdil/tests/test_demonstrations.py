import numpy as np
import pytest

from tdil.demonstrations import (
    Demonstration,
    check_demonstration,
    load_d4rl_episode,
    load_demonstration,
    load_minari_episode,
    record_demonstration,
    save_demonstration,
)
from tdil.envs import make_env


def _demo(env_id="Pendulum-v1", seed=0):
    env = make_env(env_id)
    env.action_space.seed(seed)
    return env, record_demonstration(env, env_id, lambda o: env.action_space.sample(), seed)


def test_demonstration_file_round_trips(tmp_path):
    env, demo = _demo()
    assert len(demo) == 200 and demo.observations.shape == (201, 3) and demo.truncations[-1]
    save_demonstration(tmp_path / "d.npz", demo)
    back = load_demonstration(tmp_path / "d.npz")
    assert back.env_id == "Pendulum-v1"
    for k in ("observations", "actions", "rewards", "terminations", "truncations"):
        np.testing.assert_array_equal(getattr(back, k), getattr(demo, k))
    np.testing.assert_array_equal(back.next_obs[:-1], back.obs[1:])
    check_demonstration(back, env, "Pendulum-v1")


def test_wrong_environment_or_shape_is_rejected(tmp_path):
    env, demo = _demo()
    wrong_env = Demonstration("Hopper-v5", demo.observations, demo.actions, demo.rewards, demo.terminations, demo.truncations)
    with pytest.raises(ValueError, match="Hopper"):
        check_demonstration(wrong_env, env, "Pendulum-v1")
    wrong_shape = Demonstration("Pendulum-v1", np.zeros((201, 4), np.float32), demo.actions, demo.rewards, demo.terminations, demo.truncations)
    with pytest.raises(ValueError, match="shape"):
        check_demonstration(wrong_shape, env, "Pendulum-v1")
    out_of_box = Demonstration("Pendulum-v1", demo.observations, demo.actions * 10, demo.rewards, demo.terminations, demo.truncations)
    with pytest.raises(ValueError, match="outside"):
        check_demonstration(out_of_box, env, "Pendulum-v1")
    with pytest.raises(ValueError, match="T\\+1"):
        Demonstration("Pendulum-v1", demo.observations[:-1], demo.actions, demo.rewards, demo.terminations, demo.truncations)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a"):
        load_demonstration(tmp_path / "other.npz")


def test_minari_and_d4rl_loaders(tmp_path):
    h5py = pytest.importorskip("h5py")
    _, demo = _demo()
    with h5py.File(tmp_path / "main_data.hdf5", "w") as f:
        g = f.create_group("episode_0")
        for k in ("observations", "actions", "rewards", "terminations", "truncations"):
            g[k] = getattr(demo, k)
    m = load_minari_episode(tmp_path / "main_data.hdf5", "Pendulum-v1")
    np.testing.assert_array_equal(m.observations, demo.observations)
    # D4RL: two episodes concatenated, flat arrays with next_observations
    with h5py.File(tmp_path / "d4rl.hdf5", "w") as f:
        f["observations"] = np.concatenate([demo.obs, demo.obs])
        f["next_observations"] = np.concatenate([demo.next_obs, demo.next_obs])
        f["actions"] = np.concatenate([demo.actions, demo.actions])
        f["rewards"] = np.concatenate([demo.rewards, demo.rewards])
        f["terminals"] = np.zeros(400, bool)
        f["timeouts"] = np.concatenate([demo.truncations, demo.truncations])
    d = load_d4rl_episode(tmp_path / "d4rl.hdf5", "Pendulum-v1", episode=1)
    np.testing.assert_array_equal(d.observations, demo.observations)
    np.testing.assert_array_equal(d.actions, demo.actions)
    with pytest.raises(ValueError, match="episodes"):
        load_d4rl_episode(tmp_path / "d4rl.hdf5", "Pendulum-v1", episode=2)

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


def _minari_dataset(env, root, episodes=1, seed=0):
    """A small dataset in Minari's own on-disk layout, written by Minari's storage code (MinariStorage: its
    `data/main_data.hdf5` and `data/metadata.json` with the env spec), from random-action episodes.
    (Minari's DataCollector would need jax, extra minari[create]; the storage writer does not.)"""
    from types import SimpleNamespace

    pytest.importorskip("minari")
    from minari.dataset.minari_storage import MinariStorage

    (root / "data").parent.mkdir(parents=True, exist_ok=True)
    storage = MinariStorage.new(root / "data", env.observation_space, env.action_space, env_spec=env.spec, data_format="hdf5")
    env.action_space.seed(seed)
    eps = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        rec = dict(observations=[obs], actions=[], rewards=[], terminations=[], truncations=[])
        done = False
        while not done:
            a = env.action_space.sample()
            obs, r, term, trunc, _ = env.step(a)
            for k, v in zip(("observations", "actions", "rewards", "terminations", "truncations"), (obs, a, r, term, trunc)):
                rec[k].append(v)
            done = term or trunc
        eps.append(SimpleNamespace(id=ep, seed=seed + ep, options=None, infos={}, **{k: np.asarray(v) for k, v in rec.items()}))
    storage.update_episodes(eps)
    return storage


def test_minari_loader_reads_a_dataset_written_by_minari(tmp_path):
    from types import SimpleNamespace

    root = tmp_path / "pendulum-random-v0"
    storage = _minari_dataset(make_env("Pendulum-v1"), root, episodes=2)
    ref = SimpleNamespace(**next(iter(storage.get_episodes([1]))))  # read back by Minari itself
    for path in (root, root / "data", root / "data" / "main_data.hdf5"):  # any of the three forms
        demo = load_minari_episode(path, "Hopper-v5", episode=1)
        np.testing.assert_array_equal(demo.observations, ref.observations)
        np.testing.assert_array_equal(demo.actions, ref.actions)
        np.testing.assert_allclose(demo.rewards, ref.rewards, rtol=1e-6)  # Minari keeps float64 rewards; ours are float32
        assert demo.env_id == "Pendulum-v1"  # from the dataset's metadata.json, not the caller's guess
    check_demonstration(demo, make_env("Pendulum-v1"), "Pendulum-v1")
    with pytest.raises(ValueError, match="Pendulum-v1"):  # a Minari dataset of another task is refused
        check_demonstration(demo, make_env("Hopper-v5"), "Hopper-v5")
    with pytest.raises(ValueError, match="episode_2"):
        load_minari_episode(root, "Pendulum-v1", episode=2)
    with pytest.raises(FileNotFoundError):
        load_minari_episode(tmp_path / "nothing", "Pendulum-v1")


def test_paper_door_config_runs_end_to_end_from_a_minari_door_dataset(tmp_path):
    """The `paper-door` config on a local stand-in: a 200-step AdroitHandDoor-v1 episode written by Minari,
    passed as --demo-path; the paper's protocol (per-batch rewards, BC and the expert critic step) at tiny widths."""
    pytest.importorskip("gymnasium_robotics")
    import train

    root = tmp_path / "door-random-v0"
    _minari_dataset(make_env("AdroitHandDoor-v1"), root)
    cfg = train.parse_config(["--config", "paper-door"])
    assert cfg.env_id == "AdroitHandDoor-v1" and cfg.steps == 1_000_000 and cfg.reward_refresh_every == 0
    args = ["--config", "paper-door", "--demo-path", str(root), "--demo-format", "minari", "--methods", "tdil", "bc",
            "--seeds", "0", "--steps", "90", "--warmup-steps", "50", "--eval-every", "90", "--eval-episodes", "1",
            "--batch-size", "16", "--hidden", "16", "--disc-hidden", "16", "--bc-steps", "10", "--workers", "1",
            "--out-dir", str(tmp_path / "runs"), "--no-progress", "--no-tensorboard"]
    table = train.main(args)
    assert set(table) == {"tdil", "bc"} and np.isfinite(table["tdil"]["return_mean"])
    (run,) = (tmp_path / "runs").iterdir()
    demo = load_demonstration(run / "demonstration.npz")
    assert demo.env_id == "AdroitHandDoor-v1" and len(demo) == 200 and demo.observations.shape == (201, 39)
    # the Door dataset is refused on another task (its metadata names the environment)
    with pytest.raises(ValueError, match="AdroitHandDoor"):
        train.main(["--config", "paper-hopper", "--demo-path", str(root), "--demo-format", "minari", "--methods", "tdil",
                    "--seeds", "0", "--steps", "10", "--out-dir", str(tmp_path / "runs2"), "--no-progress", "--no-tensorboard"])

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # train.py lives beside tests/
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def demo():
    """One random-policy Pendulum-v1 demonstration (seed 0), shared by the imitation tests."""
    from tdil.demonstrations import record_demonstration
    from tdil.envs import make_env

    env = make_env("Pendulum-v1")
    env.action_space.seed(0)
    return record_demonstration(env, "Pendulum-v1", lambda o: env.action_space.sample(), 0)

"""SMAC's reward scale as the default (`--reward_scale smac`): SMAC divides r by max_reward / 20 so that a perfect
episode returns 20; on SMAX the same normalisation is r x 20 / (what a perfect SMAX episode returns)."""
import numpy as np
import pytest
import torch

from dfac.config import parse_args
from dfac.envs import SMAC_REWARD_SCALE_RATE, TwoStepMatrixGame, reward_scale_factor
from dfac.run import build
from dfac.runner import run_episodes


@pytest.fixture(scope="module")
def smax_3m():
    pytest.importorskip("jaxmarl")
    from dfac.envs.smax import SMAXEnv

    env = SMAXEnv("3m", n_envs=4, seed=0)
    yield env
    env.close()


def test_a_perfect_smax_episode_returns_max_return(smax_3m):
    """jaxmarl's own reward for 'every enemy from full health to dead, allies alive' is max_return (= 2 on 3m);
    the reward is linear in the health removed, so spreading the kills over many steps returns the same."""
    import jax

    jenv = smax_3m._env
    state = jenv.reset(jax.random.PRNGKey(0))[1].state
    na = jenv.num_allies
    dead = state.unit_health.at[na:].set(0.0)
    end = state.replace(unit_health=dead, unit_alive=state.unit_alive.at[na:].set(False))
    assert float(jenv.compute_reward(end, state.unit_health, dead)["ally_0"]) == pytest.approx(smax_3m.max_return)
    assert smax_3m.max_return == 2.0
    half = state.unit_health.at[na].multiply(0.5)  # half of one enemy's health, no win: 1/6 on 3m
    assert float(jenv.compute_reward(state, state.unit_health, half)["ally_0"]) == pytest.approx(0.5 / 3)


def test_the_default_resolves_to_smacs_scale(smax_3m, load_script):
    train = load_script("train")
    assert SMAC_REWARD_SCALE_RATE == 20.0
    assert parse_args([]).reward_scale == "smac"
    assert reward_scale_factor("smac", smax_3m) == pytest.approx(10.0)  # 3m: 20 / 2
    assert train.settings(parse_args([]), "dmix", 10, smax_3m).reward_scale == pytest.approx(10.0)
    assert train.settings(parse_args(["--reward_scale", "1"]), "dmix", 10, smax_3m).reward_scale == 1.0  # SMAX's own
    assert train.settings(parse_args(["--reward_scale", "2.5"]), "qmix", 10, smax_3m).reward_scale == 2.5
    matrix = TwoStepMatrixGame(n_envs=2)
    assert train.settings(parse_args([]), "dmix", 10, matrix).reward_scale == 1.0  # the matrix game stays unscaled
    for bad in ("smax", "-1", "0"):
        with pytest.raises(ValueError):
            parse_args(["--reward_scale", bad])


@pytest.mark.parametrize("alg", ["dmix", "qmix"])
def test_the_default_target_is_factor_times_r_on_smax(smax_3m, alg, load_script):
    """The learner built from the default config on SMAX 3m has the loss of an unscaled learner fed 10 r."""
    train = load_script("train")
    torch.manual_seed(0)
    learner, controller = build(alg, smax_3m, train.settings(parse_args([]), alg, 10, smax_3m))
    ep, _ = run_episodes(smax_3m, controller, 1.0, np.random.default_rng(0))
    b = {k: torch.as_tensor(v) for k, v in ep.items()}
    assert b["reward"].abs().sum() > 0
    torch.manual_seed(1)
    scaled = learner.loss(b)[0]
    learner.reward_scale = 1.0
    torch.manual_seed(1)
    by_hand = learner.loss({**b, "reward": 10 * b["reward"]})[0]
    torch.manual_seed(1)
    unscaled = learner.loss(b)[0]
    assert torch.allclose(scaled, by_hand) and not torch.allclose(scaled, unscaled)

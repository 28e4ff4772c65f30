import pytest

from dfac.config import CONFIG_DIR, Config, parse_args


def test_named_configs_parse():
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
    assert "quick" in names and any(n.startswith("paper-") for n in names)
    for name in names:
        cfg = parse_args(["--config", name])
        assert cfg.config == name
    cfg = parse_args(["--config", "paper-MMM2"])
    assert cfg.env == "smac" and cfg.t_max == 8_200_000
    assert cfg.per_alg("rnn_hidden_overrides", "ddn", cfg.rnn_hidden) == 512
    assert cfg.per_alg("rnn_hidden_overrides", "vdn", cfg.rnn_hidden) == 64


def test_overrides_and_per_algorithm_quantiles():
    cfg = parse_args(["--algs", "dmix,ddn", "--t_max", "123", "--progress", "false"])
    assert cfg.alg_list() == ["dmix", "ddn"] and cfg.t_max == 123 and cfg.progress is False
    assert cfg.per_alg("n_quantiles", "dmix", 8) == 8 and cfg.per_alg("n_quantiles", "ddn", 8) == 1


@pytest.mark.parametrize("argv", [["--algs", "dmix,foo"], ["--phases", "matrix,bar"], ["--env", "sc3"],
                                  ["--t_max", "0"], ["--batch_size", "64", "--buffer_size", "32"],
                                  ["--epsilon_finish", "0.9", "--epsilon_start", "0.5"],
                                  ["--matrix_exploration", "uniform,greedy"], ["--matrix_epsilon_anneal_frac", "0"],
                                  ["--agent", "lstm"], ["--reward_scale", "0"], ["--reward_scale", "x10"]])
def test_bad_input_is_rejected(argv):
    with pytest.raises(ValueError):
        parse_args(argv)


def test_unknown_config_and_option_exit():
    with pytest.raises(SystemExit):
        parse_args(["--config", "no-such-config"])
    with pytest.raises(SystemExit):
        parse_args(["--no_such_option", "1"])


def test_defaults_are_the_official_hyperparameters():
    c = Config()
    assert (c.lr, c.gamma, c.grad_clip, c.batch_size, c.buffer_size, c.target_update_interval) == (5e-4, 0.99, 10.0, 32, 5000, 200)
    assert (c.epsilon_start, c.epsilon_finish, c.epsilon_anneal_time, c.n_act_quantiles) == (1.0, 0.05, 50_000, 32)


def test_paper_scale_configs_make_one_update_per_episode():
    # the official DFAC yaml use PyMARL's episode runner: one learner update after every episode
    for name in sorted(p.stem for p in CONFIG_DIR.glob("*.json") if p.stem.startswith(("paper-", "smax-"))):
        cfg = parse_args(["--config", name])
        assert cfg.updates_per_run == cfg.n_envs, name

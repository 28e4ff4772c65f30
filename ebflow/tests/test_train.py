"""The main job end to end on sklearn digits (float32 path), resume, and bad input."""
import csv
import json
import os

import jax
import numpy as np
import pytest

import train
from ebflow.training import check_finite, init_state, load_checkpoint, make_optimizer

TINY = ["--config", "digits", "--log-every", "10", "--ckpt-every", "10", "--eval-every", "20", "--inpaint-steps", "5",
        "--n-samples", "4", "--lr", "3e-3"]


def _run(tmp_path, *extra):
    return train.main(TINY + ["--out-dir", str(tmp_path)] + list(extra))


def _only_run_dir(tmp_path):
    (d,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    return d


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    with jax.enable_x64(False):
        res = _run(tmp, "--objectives", "ml,dsm", "--steps", "60")
    return tmp, res


def test_short_run_writes_everything_and_learns(digits_run):
    tmp, results = digits_run
    run = _only_run_dir(tmp)
    assert json.load(open(run / "config.json"))["steps"] == 60
    for obj in ("ml", "dsm"):
        for f in ("metrics.csv", "checkpoint.msgpack", "samples.png", "inpainting.png", "loss.png", "result.json"):
            assert (run / obj / f).exists(), (obj, f)
        assert os.listdir(run / obj / "tb")
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert [r["objective"] for r in rows] == ["ml", "dsm"]
    # the flow at initialisation is far worse than 9 bits/dim on digits; 60 steps must get well below
    for r in results:
        assert np.isfinite(r["test_nll"]) and r["test_nll"] < 9.0, r


def test_resume_equals_uninterrupted_run(tmp_path):
    with jax.enable_x64(False):
        _run(tmp_path / "a", "--objectives", "dsm", "--steps", "20", "--eval-every", "0", "--inpaint-steps", "0")
        _run(tmp_path / "b", "--objectives", "dsm", "--steps", "10", "--eval-every", "0", "--inpaint-steps", "0")
        run_b = _only_run_dir(tmp_path / "b")
        with open(run_b / "dsm" / "metrics.csv", "a") as f:  # as a run stopped after its last checkpoint leaves it
            f.write("15,1.0,,9.99\n")
        train.main(["--resume", str(run_b), "--steps", "20"])
        run_a = _only_run_dir(tmp_path / "a")
        cfg = train.parse_args(TINY)
        flow, _, _, _ = train.build(cfg)
        tmpl = init_state(flow, jax.random.PRNGKey(0), make_optimizer(cfg.lr))
        a, _ = load_checkpoint(str(run_a / "dsm" / "checkpoint.msgpack"), tmpl, {"train_seconds": 0.0})
        b, _ = load_checkpoint(str(run_b / "dsm" / "checkpoint.msgpack"), tmpl, {"train_seconds": 0.0})
    assert int(a.step) == int(b.step) == 20
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    steps = [int(r["step"]) for r in csv.DictReader(open(run_b / "dsm" / "metrics.csv"))]
    assert steps[-1] == 20 and steps == sorted(set(steps))  # the stale row is dropped: each step once, in order


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        train.parse_args(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for f in train.Config.__dataclass_fields__:
        assert "--" + f.replace("_", "-") in out


@pytest.mark.parametrize("argv,err,msg", [
    (["--objectives", "ml,sm"], ValueError, "unknown objective"),
    (["--dataset", "imagenet"], ValueError, "unknown dataset"),
    (["--config", "paper-nope"], ValueError, "unknown config"),
    (["--arch", "resnet"], ValueError, "unknown architecture"),
    (["--dataset", "swirl"], ValueError, "toy"),
    (["--resume", "/nonexistent/run"], FileNotFoundError, "config.json"),
    (["--objective-overrides", '{"mle": {"lr": 0.1}}'], ValueError, "unknown objective"),
    (["--objective-overrides", '{"ml": {"arch": 1}}'], ValueError, "may differ per objective"),
    (["--objective-overrides", '{"ml": 0.8}'], ValueError, "must be an object"),
    (["--config", "toy-checkerboard", "--augment"], ValueError, "toy datasets have none"),
])
def test_bad_arguments_are_named(argv, err, msg):
    with pytest.raises(err, match=msg):
        train.parse_args(argv)


def test_missing_dataset_dir_is_named(tmp_path):
    cfg = train.parse_args(["--data-dir", str(tmp_path / "missing")])
    with pytest.raises(FileNotFoundError, match="missing"):
        train.build(cfg)


def test_nan_loss_stops_with_a_message():
    assert check_finite(np.float32(1.5), 3, "ssm") == 1.5
    with pytest.raises(FloatingPointError, match="'dsm' gave a non-finite loss"):
        check_finite(np.float32(np.nan), 7, "dsm")


@pytest.mark.background  # long and self-contained: runs in parallel (conftest.py)
def test_toy_run_reports_kl_and_fisher_against_the_exact_density(tmp_path):
    with jax.enable_x64(False):
        res = train.main(["--config", "toy-checkerboard", "--objectives", "dsm", "--steps", "30", "--batch-size", "128",
                          "--lr", "3e-3", "--eval-every", "0", "--log-every", "10", "--out-dir", str(tmp_path)])
    for r in res:
        assert np.isfinite(r["kl"]) and r["kl"] > 0 and np.isfinite(r["fisher"]) and r["fisher"] > 0, r
    text = (_only_run_dir(tmp_path) / "results.md").read_text()
    assert "Fisher" in text and "KL" in text


def test_time_budget_stops_each_objective_before_the_step_cap(tmp_path):
    with jax.enable_x64(False):
        (r,) = _run(tmp_path, "--objectives", "dsm", "--steps", "1000000", "--time-budget", "0.3",
                    "--eval-every", "0", "--inpaint-steps", "0", "--ckpt-every", "100000")
    assert 10 <= r["steps"] < 1000000 and r["steps"] % 10 == 0  # stopped at a log step, after the budget
    assert r["train_seconds"] >= 0.3


@pytest.mark.background  # long and self-contained: runs in parallel (conftest.py)
@pytest.mark.parametrize("arch_args", [
    ["--arch", "glow", "--glow-blocks", "2", "--glow-block-size", "2", "--glow-width", "16", "--glow-coupling", "official",
     "--objectives", "dsm"],
    ["--arch", "cnn", "--kernel-size", "3", "--spectral-norm", "--residual", "--objectives", "ml,dsm"],
], ids=["glow", "cnn-spectral-norm"])
def test_glow_and_cnn_flows_train_end_to_end(tmp_path, arch_args):
    """The image architectures other than FC run through train.main and learn: score matching on Glow (its
    split priors sit in the energy), ML and score matching on the spectral-norm CNN (conv log-dets in the loss).
    Score matching here is DSM (one derivative order below SSM, so it compiles faster); the objectives' own code
    paths are checked on small flows in test_objectives.py."""
    with jax.enable_x64(False):
        res = _run(tmp_path, *arch_args, "--steps", "20", "--eval-every", "0", "--inpaint-steps", "0")
        if "--spectral-norm" in arch_args:  # the power-iteration state went into the checkpoint
            cfg = train.parse_args(TINY + arch_args)
            flow = train.build(cfg)[0]
            tmpl = init_state(flow, jax.random.PRNGKey(0), make_optimizer(cfg.lr))
            st, _ = load_checkpoint(str(_only_run_dir(tmp_path) / "dsm" / "checkpoint.msgpack"), tmpl, {"train_seconds": 0.0})
            moved = [float(np.abs(a["v"] - b["v"]).max()) for a, b in zip(st.stats, tmpl.stats) if a]
            assert len(moved) == 6 and min(moved) > 1e-3, moved
    for r in res:
        assert np.isfinite(r["test_nll"]) and r["test_nll"] < 9.0, r

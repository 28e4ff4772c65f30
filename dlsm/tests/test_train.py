"""End to end: a tiny train.py run writes its outputs and resumes; checkpoints; bad input; NaN guard."""
import os
import shutil
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import train
from dlsm import models, steps

def test_tiny_run_writes_outputs_and_resumes(tiny_toy_run, tmp_path, capsys):
    results, run_dir, out = tiny_toy_run
    for f in ("config.json", "metrics.csv", "results.json", "results.md", "samples.png", "score_errors.png",
              "losses.png", "score_errors.csv", "ckpt_score.msgpack", "ckpt_clf_total.msgpack"):
        assert os.path.exists(os.path.join(run_dir, f)), f
    assert set(results) >= {"base (CE)", "DLSM + CE", "oracle scores"}
    for name, row in results.items():
        assert 0.0 <= row["CAS"] <= 1.0 and 0.0 <= row["CW precision"] <= 1.0
    assert "| method |" in out and "DLSM + CE" in out
    # resume (a copy, so the shared run stays as written) and add the DLSM-only classifier: the
    # finished phases are loaded, not retrained, only clf_dlsm trains, and every existing row of the
    # table comes out identical (same keys, same noise), with a new "DLSM only" row
    copy = str(tmp_path / "resumed")
    shutil.copytree(run_dir, copy)
    results2, run_dir2 = train.main(train.parse(["--resume", copy, "--losses", "ce", "dlsm", "total"]))
    assert run_dir2 == copy
    printed = capsys.readouterr().out
    assert "[score] resumed at step 30" in printed and "[clf_total] resumed at step 10" in printed
    assert "[clf_dlsm] resumed" not in printed and os.path.exists(os.path.join(copy, "ckpt_clf_dlsm.msgpack"))
    assert {k: results2[k] for k in results} == results
    assert set(results2) - set(results) == {"DLSM only"} and np.isfinite(results2["DLSM only"]["CAS"])
    assert train.load_run_config(copy).losses == ("ce", "dlsm", "total")  # config.json records the added classifier
    with pytest.raises(ValueError, match="only losses may be changed, not seed"):
        train.parse(["--resume", copy, "--seed", "3"])


def test_heldout_score_benchmark_repeats_the_run(tiny_toy_run):
    """benchmarks/heldout_scores_2d.py on the tiny run: loaded from the checkpoints, its train.py
    point set gives exactly the run's score errors; the held-out sets give finite errors for every
    guidance, and share their noise (so held-out minus train-same-noise is the point set's effect)."""
    import importlib.util

    results, run_dir, _ = tiny_toy_run
    spec = importlib.util.spec_from_file_location("heldout_scores_2d", os.path.join(os.path.dirname(train.__file__), "benchmarks", "heldout_scores_2d.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # n = the run's eval_points: the held-out sets have the shapes of train.py's points, so the
    # score model and classifiers reuse the ops this process already compiled for the tiny run
    n = train.load_run_config(run_dir).eval_points
    out, sig_grid, cfg = bench.evaluate(run_dir, n=n, heldout_seed=7, progress=False)
    assert set(out) == {"train (train.py)", "held-out", "train, same noise"}
    tab = bench.summary(out["train (train.py)"], sig_grid)
    for name in ("base (CE)", "scaling (CE, x4)", "DLSM + CE"):
        assert tab[name][0] == results[name]["sigma*D_L (likelihood score err)"]
        assert tab[name][1] == results[name]["sigma*D_P (posterior score err)"]
        for label in ("held-out", "train, same noise"):
            assert len(out[label][name]["likelihood"]) == len(sig_grid) and np.all(np.isfinite(out[label][name]["posterior"]))
            assert out[label][name]["likelihood"] != out["train (train.py)"][name]["likelihood"]  # other points or noise
    _, sets = bench.point_sets(cfg, *train.data_lib.load("moons")[:2], 50, 7)  # numpy only: n is honoured
    assert sets[1][3] is sets[2][3] and sets[1][1].shape == (50, 2)


def test_run_keys_are_the_seed_split():
    """train.run_keys names the five keys train.py and the benchmarks used to index by hand:
    jax.random.split(PRNGKey(seed), 5)[i] for score, clf, train, sample, eval (same values)."""
    for seed in (0, 3):
        old = jax.random.split(jax.random.PRNGKey(seed), 5)
        keys = train.run_keys(seed)
        assert keys._fields == ("score", "clf", "train", "sample", "eval")
        for i, k in enumerate(keys):
            np.testing.assert_array_equal(np.asarray(k), np.asarray(old[i]))
    assert not np.array_equal(np.asarray(train.run_keys(0).sample), np.asarray(train.run_keys(1).sample))


def test_checkpoint_roundtrip(tmp_path):
    m = models.ToyScoreMLP(nf=2)
    p = m.init(jax.random.PRNGKey(0), jnp.zeros((2, 2)), jnp.ones(2))
    opt = steps.make_optimizer(1e-3)
    state = dict(params=p, opt_state=opt.init(p), step=7, key=jax.random.PRNGKey(3))
    path = str(tmp_path / "c.msgpack")
    steps.save_checkpoint(path, state)
    template = dict(params=jax.tree_util.tree_map(jnp.zeros_like, p), opt_state=opt.init(p), step=0, key=jax.random.PRNGKey(0))
    back = steps.load_checkpoint(path, template)
    assert int(back["step"]) == 7
    for a, b in zip(jax.tree_util.tree_leaves(back["params"]), jax.tree_util.tree_leaves(p)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        steps.load_checkpoint(str(tmp_path / "none.msgpack"), template)


def test_bad_input():
    with pytest.raises(SystemExit, match="unknown config"):
        train.parse(["--config", "paper-imagenet"])
    with pytest.raises(ValueError, match="unknown dataset"):
        train.parse(["--dataset", "svhn"])
    with pytest.raises(ValueError, match="unknown classifier loss"):
        train.parse(["--losses", "hinge"])
    with pytest.raises(ValueError, match="needs toy_mlp"):
        train.parse(["--dataset", "digits"])  # image data with the 2-D MLPs
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        from dlsm.sde import VESDE

        VESDE(1.0, 0.5)
    with pytest.raises(FloatingPointError, match="loss became nan"):
        steps.check_finite(jnp.nan, "score", 12)
    with pytest.raises(ValueError, match="not divisible"):
        steps.shard_batch(jnp.zeros((3, 2)), types.SimpleNamespace(size=2))  # 3 examples over 2 devices


def test_named_configs_parse():
    import configs

    for name in configs.NAMES:
        cfg = train.parse(["--config", name])
        assert cfg.config == name
    assert train.parse(["--config", "paper-cifar100"]).clf_stage_sizes == (3, 4, 6, 3)


@pytest.mark.background
def test_tiny_image_run_reports_heldout_dlsm(tmp_path):
    """Image path (digits): held-out DLSM loss per guidance, and its reduction against g = 0. One-level
    nets and no corrector keep the compiles small (the U-Net's two levels and the image DLSM step are
    in test_models.py, the Langevin corrector in test_sampling.py)."""
    cfg = train.parse(["--config", "digits", "--score-steps", "4", "--clf-steps", "2", "--losses", "ce", "total",
                       "--samples-per-class", "8", "--sample-steps", "3", "--eval-sigmas", "2",
                       "--eval-feature-steps", "4", "--cas-steps", "4", "--unet-ch", "8", "--clf-nf", "8",
                       "--unet-ch-mult", "1", "--clf-stage-sizes", "1", "--n-corrector", "0",
                       "--out-dir", str(tmp_path)])
    results, run_dir = train.main(cfg)
    assert os.path.exists(os.path.join(run_dir, "heldout_dlsm.csv"))
    ref = results["_heldout DLSM loss, score model alone (g = 0)"]
    for name in ("base (CE)", "scaling (CE, x10)", "DLSM + CE"):
        row = results[name]
        assert np.isfinite(row["held-out DLSM loss"])
        assert row["its reduction vs g=0 (x1e3)"] == pytest.approx(1e3 * (ref - row["held-out DLSM loss"]))

    # benchmarks/classifier_per_sigma.py on this run: per-sigma held-out values for each classifier, and a
    # gradient split of the DLSM + CE objective whose two parts sum to the train step's gradient
    import importlib.util

    spec = importlib.util.spec_from_file_location("classifier_per_sigma", os.path.join(os.path.dirname(train.__file__), "benchmarks", "classifier_per_sigma.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.evaluate(run_dir, noise_draws=1, grad_batches=1)
    assert set(r["per_sigma"]) == {"ce", "total"} and len(r["sig_grid"]) == 2
    for d in r["per_sigma"].values():
        assert all(0.0 <= a <= 1.0 for a in d["acc"]) and all(v > 0 for v in d["nll"] + d["g_rms"])
    assert set(r["split"]) == {"init", "trained"} and all(v > 0 for v in r["split_sigma"]["grad_dlsm"])
    cfg2, (x, y, _, _), score_model, sp, clf, cps, c0 = bench.load_run(run_dir)
    sde = bench.VESDE(cfg2.sigma_min, cfg2.sigma_max)
    g_dlsm, g_ce, g_total = bench.objective_gradients(clf, cps["total"], lambda a, s: score_model.apply(sp, a, s),
                                                      jnp.asarray(x[:16]), jnp.asarray(y[:16]), jax.random.PRNGKey(3), sde, cfg2)
    for a, b, c in zip(*(jax.tree_util.tree_leaves(t) for t in (g_dlsm, g_ce, g_total))):
        np.testing.assert_allclose(np.asarray(a + b), np.asarray(c), rtol=1e-4, atol=1e-6)
    assert bench._tree_norm(g_dlsm) > 0 and bench._tree_norm(g_ce) > 0

    # benchmarks/classifier_ablation.py on this run: an unchanged variant continues the run's own classifier
    # (its evaluation at the run's clf_steps repeats classifier_per_sigma's and train.py's held-out numbers);
    # a variant with an override is retrained from the shared initialisation with train.py's key and
    # minibatches, so "total:coef=1" (the run's own coef) reproduces the run's DLSM + CE classifier.
    spec = importlib.util.spec_from_file_location("classifier_ablation", os.path.join(os.path.dirname(train.__file__), "benchmarks", "classifier_ablation.py"))
    abl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(abl)
    # --sample: train.py's sampling and class-wise metrics for ablation classifiers. With the run's own sampling
    # settings, keys and noise, "ce" (the run's CE classifier, continued at its clf_steps) and "total:coef=1" (the
    # run's DLSM + CE objective, retrained) repeat train.py's rows base (CE), scaling (CE, x10) and DLSM + CE.
    # Without --guidance those are the rows drawn (weight 1 each, the run's scaling_factor 10 for ce); with
    # --guidance 1,10 every variant is drawn at both weights, and the weight-10 ce row is train.py's scaling row.
    labels = ["ce @2", "total:coef=1 @2"]
    assert abl.sample_rows(labels, 10.0) == [("ce @2", "ce @2", 1.0), ("ce x10 @2", "ce @2", 10.0),
                                           ("total:coef=1 @2", "total:coef=1 @2", 1.0)]
    assert abl.sample_rows(labels, 10.0, [1, 2.5]) == [("ce @2", "ce @2", 1.0), ("ce x2.5 @2", "ce @2", 2.5),
                                                     ("total:coef=1 @2", "total:coef=1 @2", 1.0),
                                                     ("total:coef=1 x2.5 @2", "total:coef=1 @2", 2.5)]
    _, _, _, table = abl.evaluate(run_dir, ["ce", "total:coef=1"], [2], noise_draws=1, sample={}, guidance=[1, 10])
    for name, row in (("ce @2", "base (CE)"), ("ce x10 @2", "scaling (CE, x10)"), ("total:coef=1 @2", "DLSM + CE")):
        assert set(table[name]) == set(results[row])
        for k, v in results[row].items():
            assert table[name][k] == pytest.approx(v, rel=1e-5, abs=1e-7), (name, k)
    assert table["_feature_net_test_acc"] == results["_feature_net_test_acc"]
    assert table["total:coef=1 x10 @2"]["held-out DLSM loss"] != table["total:coef=1 @2"]["held-out DLSM loss"]
    assert os.path.exists(os.path.join(run_dir, "ablation", "samples", "samples.npz"))
    rows, _, ref2, table = abl.evaluate(run_dir, ["ce", "total:coef=1", "total:coef=10"], [2, 3], noise_draws=1)
    assert table is None  # no sampling without sample=
    assert ref2 == pytest.approx(ref)
    got = {(r["variant"], r["step"]): r for r in rows}
    assert got[("ce", 2)]["acc"] == r["per_sigma"]["ce"]["acc"] and got[("ce", 2)]["nll"] == r["per_sigma"]["ce"]["nll"]
    assert got[("ce", 2)]["reduction"] == pytest.approx(results["base (CE)"]["its reduction vs g=0 (x1e3)"], rel=1e-5)
    assert got[("total:coef=1", 2)]["nll"] == r["per_sigma"]["total"]["nll"]
    assert got[("total:coef=1", 2)]["heldout"] == pytest.approx(results["DLSM + CE"]["held-out DLSM loss"], rel=1e-6)
    assert got[("ce", 3)]["nll"] != got[("ce", 2)]["nll"]  # trained on
    assert got[("total:coef=10", 2)]["nll"] != got[("total:coef=1", 2)]["nll"]  # another objective
    with pytest.raises(ValueError, match="field"):
        abl.parse_variant("total:lr=1")

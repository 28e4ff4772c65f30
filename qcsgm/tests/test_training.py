"""Training: a short run learns and lowers the asymmetry, checkpoints resume exactly, bad input fails
loudly, the multi-device path agrees with one device, and the main job runs end to end."""
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

import train
from qcsbm import data as D
from qcsbm.losses import make_loss_fn
from qcsbm.metrics import asymmetry_over_levels
from qcsbm.models import build_model
from qcsbm.sde import VESDE
from qcsbm.training import init_state, load_checkpoint, make_optimizer, make_train_step, save_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SDE = VESDE(0.1, 3.0)


_STEPS = {}


def _run(method, steps, lam=1.0, toy="gaussian_8", state=None, batch=256):
    model = build_model("toy_mlp", SDE, conservative=(method == "csbm"))
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 2)), jnp.zeros(2))
    opt = make_optimizer(7.5e-4)
    state = state or init_state(params, opt)
    if method not in _STEPS:  # compile each method's step once
        _STEPS[method] = make_train_step(make_loss_fn(model, SDE, method, lam), opt)
    step = _STEPS[method]
    hist = []
    for i in range(int(state.step), steps):
        state, aux = step(state, jnp.asarray(D.sample_toy(toy, batch, np.random.default_rng([0, i]))),
                          jax.random.PRNGKey(1))
        hist.append(float(aux["dsm"]))
    return model, state, hist


def test_short_run_learns_and_regulariser_lowers_asymmetry():
    x = jnp.asarray(D.sample_toy("gaussian_8", 1000, 99))
    out = {}
    for method in ("usbm", "qcsbm_hutch"):
        model, state, hist = _run(method, 120)
        assert np.mean(hist[-20:]) < 0.8 * np.mean(hist[:5]), (method, hist[:5], hist[-20:])
        score = jax.jit(lambda y, t, p=state.params, m=model: m.score(p, y, t))
        out[method] = asymmetry_over_levels(score, SDE, x, jax.random.PRNGKey(0), 5)[0].mean()
    assert out["qcsbm_hutch"] < 0.8 * out["usbm"], out


def test_checkpoint_resume_is_exact(tmp_path):
    _, straight, _ = _run("usbm", 8)
    _, half, _ = _run("usbm", 4)
    path = str(tmp_path / "ckpt.msgpack")
    save_checkpoint(path, half)
    restored = load_checkpoint(path, jax.tree.map(jnp.zeros_like, half))
    assert int(restored.step) == 4
    _, resumed, _ = _run("usbm", 8, state=restored)
    for a, b in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(str(tmp_path / "nope.msgpack"), half)


def test_bad_input_gives_clear_errors():
    score_model = build_model("toy_mlp", SDE)
    with pytest.raises(ValueError, match="unknown method 'qcsm'"):
        make_loss_fn(score_model, SDE, "qcsm")
    with pytest.raises(ValueError, match="needs a energy model"):
        make_loss_fn(score_model, SDE, "csbm")
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_model("resnet", SDE)
    with pytest.raises(SystemExit, match="unknown config 'paper-foo'"):
        train.parse_args(["--config", "paper-foo"])
    with pytest.raises(SystemExit, match="unknown toy dataset 'moons'"):
        train.parse_args(["--toys", "moons"])
    with pytest.raises(SystemExit, match="unknown method 'dsm'"):
        train.parse_args(["--methods", "dsm"])
    with pytest.raises(SystemExit, match="toy-steps must be >= 1"):
        train.parse_args(["--toy-steps", "0"])
    with pytest.raises(SystemExit, match="--image-size must be >= 0"):
        train.parse_args(["--image-size", "-1"])
    with pytest.raises(SystemExit, match="--resume folder not found"):
        train.parse_args(["--resume", "/nonexistent/run"])


def test_nan_loss_raises(tmp_path):
    cfg = train.parse_args(["--log-every", "1"])

    def nan_step(state, x, key):
        return state, {"loss": jnp.nan, "dsm": jnp.nan}

    logger = train.Logger(str(tmp_path))
    with pytest.raises(FloatingPointError, match="non-finite training metrics at step 1"):
        train.train_loop("toy/nan", cfg, init_state({"w": jnp.zeros(1)}, make_optimizer(1e-3)), nan_step,
                         lambda s: np.zeros((4, 2), np.float32), 3, jax.random.PRNGKey(0),
                         str(tmp_path / "c.msgpack"), logger, None)
    logger.close()


@pytest.mark.background
def test_data_parallel_step_matches_single_device():
    """Two forced host devices: the sharded train step gives the same parameters as one device."""
    code = textwrap.dedent("""
        import jax, jax.numpy as jnp, numpy as np
        from qcsbm import data as D
        from qcsbm.losses import make_loss_fn
        from qcsbm.models import build_model
        from qcsbm.sde import VESDE
        from qcsbm.training import init_state, make_mesh, make_optimizer, make_train_step, replicate, shard_batch
        assert len(jax.devices()) == 2, jax.devices()
        sde = VESDE(0.1, 3.0)
        model = build_model("toy_mlp", sde)
        params = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 2)), jnp.zeros(2))
        opt = make_optimizer(1e-3)
        loss = make_loss_fn(model, sde, "qcsbm_exact", 0.1)
        x = D.sample_toy("checkerboard", 64, 0)
        s1, a1 = make_train_step(loss, opt)(init_state(params, opt), jnp.asarray(x), jax.random.PRNGKey(1))
        mesh = make_mesh(2)
        s2, a2 = make_train_step(loss, opt, mesh=mesh)(replicate(init_state(params, opt), mesh),
                                                        shard_batch(x, mesh), jax.random.PRNGKey(1))
        assert len(s2.params["params"]["Dense_0"]["kernel"].sharding.device_set) == 2
        for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s2.params)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
        print("OK", float(a1["loss"]), float(a2["loss"]))
    """)
    flags = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()  # keeps conftest's level
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr


def test_main_job_end_to_end_and_resume(tmp_path):
    args = ["--toys", "gaussian_8", "--methods", "usbm", "--toy-steps", "30", "--toy-batch", "128",
            "--eval-samples", "200", "--nll-samples", "50", "--n-levels", "3", "--pc-steps", "20",
            "--few-steps", "5", "--nfe-sweep", "4", "--image-dataset", "", "--ae-steps", "0",
            "--ckpt-every", "10", "--out-dir", str(tmp_path)]
    res = train.main(train.parse_args(args))
    (run_dir,) = [os.path.join(tmp_path, d) for d in os.listdir(tmp_path)]
    for f in ("config.json", "metrics.csv", "results.json", "results.md", "asymmetry_vs_noise.png",
              "toy_samples_pc.png", "learning_curves.png", "ckpt/gaussian_8-usbm.msgpack"):
        assert os.path.exists(os.path.join(run_dir, f)), f
    r = res["toys"]["gaussian_8/usbm"]
    assert r["asym"] > 0 and np.isfinite(r["nll"]) and 0 <= r["pc_p"] <= 1 and len(r["asym_levels"]) == 3
    # resume: finished parts are kept, not retrained
    res2 = train.main(train.parse_args(args + ["--resume", run_dir]))
    assert res2["toys"] == json.loads(json.dumps(res["toys"]))


def test_image_sampler_runs_csbm_on_the_host_and_the_others_in_jit():
    """train.image_sampler (train.py's image experiment, benchmarks/image_few_step.py and image_score_check.py):
    for the energy U-Net (CSBM) the PC sampler, ODE sampler and ODE NLL loop on the host, for the direct-score U-Net
    (USBM, QCSBM) inside one jitted program; host=True / False overrides the model's choice."""
    sde = VESDE(0.01, 10.0)
    in_jit = {"pc": train._pc_sample, "ode": train._ode_sample, "nll": train._ode_nll}
    on_host = {"pc": train.S.pc_sample_host, "ode": train.S.ode_sample_host, "nll": train.S.ode_nll_host}
    for conservative, expect in ((True, on_host), (False, in_jit)):
        model = build_model("ncsnpp_small", sde, conservative=conservative)
        assert model.kind == ("energy" if conservative else "score")
        for name in ("pc", "ode", "nll"):
            assert train.image_sampler(name, model) is expect[name]
            assert train.image_sampler(name, model, host=True) is on_host[name]
            assert train.image_sampler(name, model, host=False) is in_jit[name]
    for name in ("pc", "ode", "nll"):  # no model: the path must be given
        assert train.image_sampler(name, host=True) is on_host[name]


def test_image_nll_in_float64_agrees_between_host_and_jitted_loops():
    """train.image_nll (train.py's image NLL): float64 for an energy model (CSBM) by default, where the host loop and
    the jitted loop give the same Hutchinson NLL and NFE to a relative 1e-6 (1.3e-8 measured: this untrained energy's
    NLLs reach 3e4 nats; in float32 the trained CSBM U-Net's differ by up to ~18 nats per image, README); x64 mode is off again after the call; float32 (the plain sampler) for a direct
    score model (USBM / QCSBM) unless image_nll_dtype says float64. The energy model here is the 2-D CSBM MLP (the
    energy U-Net's second-order program takes about a minute to compile per loop)."""
    model = build_model("toy_mlp", SDE, conservative=True)
    x = jnp.asarray(D.sample_toy("gaussian_8", 64, 3))
    score = Partial(model.score, model.init(jax.random.PRNGKey(1), x, jnp.zeros(64)))
    cfg = train.parse_args([])
    assert cfg.image_nll_dtype == "auto"
    out = {host: train.image_nll(cfg, model, host)(score, SDE, x, jax.random.PRNGKey(2), exact=False)
           for host in (True, False)}
    (nll_h, nfe_h), (nll_j, nfe_j) = out[True], out[False]
    assert nll_h.dtype == nll_j.dtype == np.float64 and nll_h.shape == (64,) and np.all(np.isfinite(nll_h))
    assert int(nfe_h) == int(nfe_j)
    np.testing.assert_allclose(nll_h, nll_j, rtol=1e-6)
    assert jnp.zeros(1).dtype == jnp.float32  # x64 mode was for the NLL only
    direct = build_model("toy_mlp", SDE)
    assert train.image_nll(cfg, direct) is train._ode_nll
    assert train.image_nll(train.parse_args(["--image-nll-dtype", "float32"]), model) is train.S.ode_nll_host
    assert train.image_nll(train.parse_args(["--image-nll-dtype", "float64"]), direct).args == (train._ode_nll,)


def test_eval_images_are_the_same_test_images_at_every_count():
    """train.eval_images (train.py's image evaluation and the image benchmarks): the first n dequantised test images
    are the first n of all of them, so runs that score different counts share their images; each lies in its
    pixel's dequantisation cell, and another seed draws other noise."""
    cfg = train.parse_args(["--image-dataset", "digits"])
    x = D.load_images("digits", "test")
    every = train.eval_images(cfg)
    assert every.shape == x.shape and every.dtype == np.float32
    np.testing.assert_array_equal(train.eval_images(cfg, 64), every[:64])
    k = np.round(x * 16)
    assert np.all((every > k / 17 - 1e-6) & (every < (k + 1) / 17 + 1e-6))  # float32 rounding at the cell ends
    other = train.eval_images(train.parse_args(["--image-dataset", "digits", "--seed", str(cfg.seed + 1)]), 64)
    assert np.abs(other - every[:64]).max() > 0.01

"""QCSBM main job: USBM vs QCSBM (exact / Hutchinson) vs CSBM on the 2-D toys with the same seed
and budget, a short image run (USBM vs QCSBM on a small NCSN++-style U-Net), and the Section 6
autoencoder demo. Prints and writes a results table, CSV/TensorBoard metrics, checkpoints and PNGs
to runs/<config>-<time>/.

    python train.py                          # the quick CPU default
    python train.py --config paper-2d        # the paper's 2-D settings (GPU)
    python train.py --resume runs/quick-...  # continue an interrupted run
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from jax.tree_util import Partial
from tqdm import tqdm

from configs import CONFIGS
from qcsbm import data as D
from qcsbm import metrics as M
from qcsbm import sampling as S
from qcsbm.config import Config, replace
from qcsbm.losses import METHODS, make_loss_fn
from qcsbm.models import build_model
from qcsbm.sde import VESDE
from qcsbm.training import (init_state, load_checkpoint, make_mesh, make_optimizer, make_train_step,
                            replicate, save_checkpoint, shard_batch)

# ----------------------------------------------------------------------------- config


def parse_args(argv=None) -> Config:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = "quick"
    for i, a in enumerate(argv):
        if a == "--config" and i + 1 < len(argv):
            name = argv[i + 1]
        elif a.startswith("--config="):
            name = a.split("=", 1)[1]
    if name not in CONFIGS:
        raise SystemExit(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}")
    default = replace(Config(), **CONFIGS[name], config=name)
    cfg = tyro.cli(Config, default=default, args=argv, description=__doc__)
    validate(cfg)
    return cfg


def validate(cfg: Config):
    for t in cfg.toys:
        if t not in D.TOYS:
            raise SystemExit(f"unknown toy dataset {t!r}; choose from {D.TOYS}")
    for m in cfg.methods:
        if m not in METHODS:
            raise SystemExit(f"unknown method {m!r}; choose from {METHODS}")
    for m in cfg.image_methods:
        if m not in METHODS:
            raise SystemExit(f"unknown image method {m!r}; choose from {METHODS}")
    if cfg.image_dataset and cfg.image_dataset not in D.IMAGE_SETS:
        raise SystemExit(f"unknown image dataset {cfg.image_dataset!r}; choose from {D.IMAGE_SETS}")
    for f in ("toy_steps", "toy_batch", "image_steps", "image_batch", "eval_samples", "n_levels",
              "nll_samples", "pc_steps", "few_steps", "n_slices", "image_n_slices", "ckpt_every", "log_every"):
        if getattr(cfg, f) < 1:
            raise SystemExit(f"--{f.replace('_', '-')} must be >= 1, got {getattr(cfg, f)}")
    if cfg.image_size < 0:
        raise SystemExit(f"--image-size must be >= 0, got {cfg.image_size}")
    if cfg.resume and not os.path.isdir(cfg.resume):
        raise SystemExit(f"--resume folder not found: {cfg.resume}")


# ----------------------------------------------------------------------------- logging


class Logger:
    """metrics.csv (long format: run, step, key, value) + TensorBoard (tensorboardX)."""

    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, "metrics.csv")
        new = not os.path.exists(self.path)
        self.f = open(self.path, "a", newline="")
        self.w = csv.writer(self.f)
        if new:
            self.w.writerow(["run", "step", "key", "value"])
        try:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(os.path.join(run_dir, "tb"))
        except ImportError:  # optional
            self.tb = None

    def log(self, run, step, values):
        for k, v in values.items():
            self.w.writerow([run, step, k, f"{v:.6g}"])
            if self.tb is not None:
                self.tb.add_scalar(f"{run}/{k}", v, step)
        self.f.flush()

    def close(self):
        self.f.close()
        if self.tb is not None:
            self.tb.close()


def train_loop(name, cfg, state, step_fn, batch_fn, n_steps, key, ckpt_path, logger, mesh):
    """Runs step_fn from state.step to n_steps; logs, checks for NaN, checkpoints."""
    start = int(state.step)
    bar = tqdm(range(start, n_steps), desc=name, initial=start, total=n_steps, leave=False,
               disable=None, mininterval=2.0)
    for step in bar:
        state, aux = step_fn(state, shard_batch(batch_fn(step), mesh), key)
        if (step + 1) % cfg.log_every == 0 or step + 1 == n_steps:
            vals = {k: float(v) for k, v in aux.items()}
            if not all(np.isfinite(v) for v in vals.values()):
                raise FloatingPointError(f"{name}: non-finite training metrics at step {step + 1}: {vals}; "
                                         f"lower the learning rate or lambda")
            logger.log(name, step + 1, vals)
            bar.set_postfix(loss=f"{vals['loss']:.4f}")
        if (step + 1) % cfg.ckpt_every == 0:
            save_checkpoint(ckpt_path, state)
    save_checkpoint(ckpt_path, state)
    return state


def restore_or_init(ckpt_path, state):
    if os.path.exists(ckpt_path):
        state = load_checkpoint(ckpt_path, state)
        print(f"  resumed {ckpt_path} at step {int(state.step)}")
    return state


# ----------------------------------------------------------------------------- 2-D toys


# Compiled once per architecture and reused for every toy and every method: the models are cached, the
# score enters the jitted samplers as Partial(model.score, params), so the parameters are traced arguments.
_pc_sample = jax.jit(S.pc_sample, static_argnames=("sde", "shape", "n_steps"))
# n_steps and max_steps are traced
_ode_sample = jax.jit(S.ode_sample, static_argnames=("sde", "shape", "method", "denoise", "return_t"))
_ode_nll = jax.jit(S.ode_nll, static_argnames=("sde", "exact"))


@functools.lru_cache(maxsize=None)
def toy_model(sigma_min: float, sigma_max: float, conservative: bool):
    sde = VESDE(sigma_min, sigma_max)
    return build_model("toy_mlp", sde, conservative=conservative), sde


@functools.lru_cache(maxsize=None)
def toy_train_step(sigma_min, sigma_max, method, lam, n_slices, lr, grad_clip, mesh):
    model, sde = toy_model(sigma_min, sigma_max, method == "csbm")
    opt = make_optimizer(lr, grad_clip)
    return opt, make_train_step(make_loss_fn(model, sde, method, lam, n_slices), opt, 0.0, mesh)


def toy_experiment(cfg, toy, method, run_dir, logger, mesh):
    model, sde = toy_model(cfg.toy_sigma_min, cfg.toy_sigma_max, method == "csbm")
    x0 = jnp.zeros((8, 2))
    params = model.init(jax.random.PRNGKey(cfg.seed), x0, jnp.zeros(8))  # same init for all score models
    opt, step_fn = toy_train_step(cfg.toy_sigma_min, cfg.toy_sigma_max, method, cfg.lam, cfg.n_slices, cfg.toy_lr,
                                  cfg.grad_clip, mesh)
    ckpt = os.path.join(run_dir, "ckpt", f"{toy}-{method}.msgpack")
    state = replicate(restore_or_init(ckpt, init_state(params, opt)), mesh)
    batch_fn = lambda step: D.sample_toy(toy, cfg.toy_batch, np.random.default_rng([cfg.seed, step]))  # noqa: E731
    t0 = time.time()
    state = train_loop(f"{toy}/{method}", cfg, state, step_fn, batch_fn, cfg.toy_steps,
                       jax.random.PRNGKey(cfg.seed + 1), ckpt, logger, mesh)
    train_s = time.time() - t0
    res, samples = evaluate_toy(cfg, toy, model, sde, jax.device_get(state.params))
    res["train_s"] = train_s
    return res, samples


def evaluate_toy(cfg, toy, model, sde, params):
    key = jax.random.PRNGKey(cfg.seed + 2)
    x_test = jnp.asarray(D.sample_toy(toy, cfg.eval_samples, np.random.default_rng([cfg.seed, 10**9])))
    score = Partial(model.score, params)
    asym, nasym = M.asymmetry_over_levels(score, sde, x_test, key, cfg.n_levels, exact=True)
    err = M.score_error_over_levels(score, D.oracle_score_fn(toy), sde, x_test, key, cfg.n_levels)
    nll, nll_nfe = _ode_nll(score, sde, x_test[: cfg.nll_samples], key, exact=True)
    shape = (cfg.eval_samples, 2)
    x_pc = _pc_sample(score, sde, key, shape, n_steps=cfg.pc_steps)
    x_few = _pc_sample(score, sde, key, shape, n_steps=cfg.few_steps)
    x_ode, ode_nfe = _ode_sample(score, sde, key, shape, method="rk45")
    euler = lambda n: _ode_sample(score, sde, key, shape, method="euler", n_steps=n)[0]  # noqa: E731
    pr = lambda x: M.precision_recall(x_test, x, cfg.nearest_k)  # noqa: E731
    res = dict(asym=float(asym.mean()), nasym=float(nasym.mean()), score_err=float(err.mean()),
               nll=float(jnp.mean(nll)), nll_nfe=int(nll_nfe),
               asym_levels=asym.tolist(), nasym_levels=nasym.tolist(), err_levels=err.tolist())
    res["pc_p"], res["pc_r"] = pr(x_pc)
    res["pcfew_p"], res["pcfew_r"] = pr(x_few)
    res["ode_p"], res["ode_r"] = pr(x_ode)
    res["ode_nfe"] = int(ode_nfe)
    res["eulerfew_p"], res["eulerfew_r"] = pr(euler(cfg.few_steps))
    sweep = []
    for n in cfg.nfe_sweep:
        p, r = pr(euler(n))
        sweep.append((n, p, r))
    res["euler_sweep"] = sweep
    hit = [n for n, p, r in sweep if (p + r) / 2 >= cfg.quality_target]
    res["nfe_to_quality"] = hit[0] if hit else None
    samples = dict(pc=np.asarray(x_pc), few=np.asarray(x_few), test=np.asarray(x_test))
    return res, samples


# ----------------------------------------------------------------------------- images


def eval_images(cfg, n=0):
    """The held-out images every image evaluation uses (train.py and benchmarks/): the first n (0: all) test images
    of cfg.image_dataset, dequantised with the generator seeded [cfg.seed, 10**9]. NHWC float32, numpy."""
    x = D.load_images(cfg.image_dataset, "test", cfg.image_root or None, cfg.image_size)
    return D.dequantize(x[: n or len(x)], D.n_bins(cfg.image_dataset), np.random.default_rng([cfg.seed, 10**9]))


def image_model(cfg, method, x_example):
    """The image score model of a method (energy U-Net for csbm), its SDE, initial parameters and optimizer."""
    sde = VESDE(cfg.image_sigma_min, cfg.image_sigma_max)
    model = build_model("ncsnpp_small", sde, conservative=method == "csbm", nf=cfg.nf, ch_mult=tuple(cfg.ch_mult),
                        num_res_blocks=cfg.num_res_blocks, attn_resolutions=tuple(cfg.attn_resolutions))
    params = model.init(jax.random.PRNGKey(cfg.seed), jnp.asarray(x_example[:2]), jnp.zeros(2))
    return model, sde, params, make_optimizer(cfg.image_lr, cfg.grad_clip, cfg.image_warmup)


def image_sampler(name, model=None, host=None):
    """The image sampler `name`: "pc" (PC sampler), "ode" (probability-flow ODE sampler) or "nll" (ODE NLL), each
    with the arguments of `sampling.pc_sample` / `ode_sample` / `ode_nll`. It loops over its steps either inside one
    jitted program (`_pc_sample`, `_ode_sample`, `_ode_nll`: lax.scan, while_loop, fori_loop) or on the host, one
    jitted step at a time (`sampling.pc_sample_host`, `ode_sample_host`, `ode_nll_host`; same steps, same results to
    float rounding). host=None picks by the model: the host for an energy model (CSBM), where XLA:CPU leaves the
    energy U-Net's input-gradient convolutions in their slow form inside a jitted loop (~4x slower per evaluation),
    the jitted loop for a direct score model (USBM, QCSBM), where the host loop is 20-30 % slower. host=True / False
    forces the path (benchmarks/image_score_check.py: the host for every score unless --pc-in-jit / --rk45-in-jit)."""
    if host is None:
        host = model.kind == "energy"
    in_jit, on_host = {"pc": (_pc_sample, S.pc_sample_host), "ode": (_ode_sample, S.ode_sample_host),
                       "nll": (_ode_nll, S.ode_nll_host)}[name]
    return on_host if host else in_jit


def image_nll(cfg, model, host=None):
    """The image ODE NLL, `image_sampler("nll", model, host)`, run in float64 (`sampling.ode_nll_float64`) when
    cfg.image_nll_dtype is float64, or auto and the model an energy model (CSBM)."""
    nll = image_sampler("nll", model, host)
    dtype = cfg.image_nll_dtype
    if dtype == "auto":
        dtype = "float64" if model.kind == "energy" else "float32"
    return functools.partial(S.ode_nll_float64, nll) if dtype == "float64" else nll


def image_train(cfg, method, run_dir, logger, mesh, x_train):
    """Trains (or resumes from ckpt/<dataset>-<method>.msgpack) the image model of a method for
    cfg.image_steps. Returns (model, sde, state, train seconds)."""
    model, sde, params, opt = image_model(cfg, method, x_train)
    name = f"{cfg.image_dataset}/{method}"
    ckpt = os.path.join(run_dir, "ckpt", f"{cfg.image_dataset}-{method}.msgpack")
    state = replicate(restore_or_init(ckpt, init_state(params, opt)), mesh)
    loss_fn = make_loss_fn(model, sde, method, cfg.image_lam, cfg.image_n_slices)
    step_fn = make_train_step(loss_fn, opt, cfg.image_ema, mesh)
    bins = D.n_bins(cfg.image_dataset)

    def batch_fn(step):
        rng = np.random.default_rng([cfg.seed, step])
        return D.dequantize(x_train[rng.integers(0, len(x_train), cfg.image_batch)], bins, rng)

    t0 = time.time()
    state = train_loop(name, cfg, state, step_fn, batch_fn, cfg.image_steps, jax.random.PRNGKey(cfg.seed + 1),
                       ckpt, logger, mesh)
    return model, sde, state, time.time() - t0


def image_experiment(cfg, method, run_dir, logger, mesh, x_train, x_eval):
    """Trains a method's image model, then scores it on x_eval (`eval_images(cfg, cfg.image_eval_samples)`)."""
    model, sde, state, train_s = image_train(cfg, method, run_dir, logger, mesh, x_train)
    bins = D.n_bins(cfg.image_dataset)
    params = jax.device_get(state.ema_params)
    key = jax.random.PRNGKey(cfg.seed + 2)
    xt = jnp.asarray(x_eval)
    score = Partial(model.score, params)
    asym, nasym = M.asymmetry_over_levels(score, sde, xt[:64], key, cfg.n_levels, exact=False, n_slices=8)
    nll, nfe = image_nll(cfg, model)(score, sde, xt[: cfg.image_nll_samples], key, exact=False)
    dim = int(np.prod(xt.shape[1:]))
    shape = (cfg.image_eval_samples,) + xt.shape[1:]
    pc = image_sampler("pc", model)
    x_pc = np.clip(np.asarray(pc(score, sde, key, shape, n_steps=cfg.image_pc_steps)), 0, 1)
    x_few = np.clip(np.asarray(pc(score, sde, key, shape, n_steps=cfg.few_steps)), 0, 1)
    res = dict(asym=float(asym.mean()), nasym=float(nasym.mean()), asym_levels=asym.tolist(),
               nasym_levels=nasym.tolist(), bpd=float(jnp.mean(S.bits_per_dim(nll, dim, bins))),
               nll_nfe=int(nfe), train_s=train_s)
    res["pc_p"], res["pc_r"] = M.precision_recall(xt, x_pc, cfg.nearest_k)
    res["pcfew_p"], res["pcfew_r"] = M.precision_recall(xt, x_few, cfg.nearest_k)
    return res, dict(pc=x_pc, few=x_few)


# ----------------------------------------------------------------------------- Section 6 autoencoder


def autoencoder_demo(cfg, run_dir, logger):
    """Untied AE s(x) = R swish(W^T x + b) + c trained by DSM with lambda = 0 and lambda = ae_lam, and the
    tied (conservative) AE: the regulariser pushes the untied model towards a symmetric Jacobian."""
    sde = VESDE(0.2, 0.5)
    rows = {}
    for label, tied, lam in (("untied, lambda=0", False, 0.0), (f"untied, lambda={cfg.ae_lam:g}", False, cfg.ae_lam),
                             ("tied (R = W)", True, 0.0)):
        model = build_model("autoencoder", sde, conservative=tied, hidden=32)
        params = model.init(jax.random.PRNGKey(cfg.seed), jnp.zeros((4, 2)), jnp.zeros(4))
        opt = make_optimizer(3e-3, cfg.grad_clip)
        method = "qcsbm_exact" if lam > 0 else "usbm"
        step_fn = make_train_step(make_loss_fn(model, sde, method, lam), opt)
        state = init_state(params, opt)
        key = jax.random.PRNGKey(cfg.seed + 1)
        for step in range(cfg.ae_steps):
            state, aux = step_fn(state, jnp.asarray(D.sample_rings(512, np.random.default_rng([cfg.seed, step]))), key)
        p = state.params["params"]
        x_test = jnp.asarray(D.sample_rings(2000, np.random.default_rng([cfg.seed, 10**9])))
        score = jax.jit(lambda x, t: model.score(state.params, x, t))
        asym, nasym = M.asymmetry_over_levels(score, sde, x_test, key, 5, exact=True)
        eval_loss = make_loss_fn(model, sde, "usbm")
        dsm = float(np.mean([eval_loss(state.params, x_test, jax.random.PRNGKey(i))[1]["dsm"] for i in range(5)]))
        rw = float(jnp.linalg.norm(p.get("R", p["W"]) - p["W"]) / jnp.linalg.norm(p["W"]))
        rows[label] = dict(asym=float(asym.mean()), nasym=float(nasym.mean()), dsm=dsm, r_minus_w=rw)
        logger.log(f"ae/{label}", cfg.ae_steps, rows[label])
    return rows


# ----------------------------------------------------------------------------- report


def fmt(v, nd=3):
    if v is None:
        return "not reached"
    if isinstance(v, float):
        return f"{v:.{nd}g}" if abs(v) < 1e-2 or abs(v) >= 1e3 else f"{v:.{nd}f}"
    return str(v)


def toy_table(cfg, results):
    hdr = ("| toy | method | Asym | NAsym | score err | NLL (nats) | P / R PC-{0} | P / R PC-{1} | "
           "P / R Euler-{1} | P / R RK45 (NFE) | Euler NFE to (P+R)/2 >= {2} |").format(
        cfg.pc_steps, cfg.few_steps, cfg.quality_target)
    lines = [hdr, "|" + "---|" * (hdr.count("|") - 1)]
    for key, r in results.items():
        toy, method = key.split("/")
        lines.append(f"| {toy} | {method} | {fmt(r['asym'])} | {fmt(r['nasym'])} | {fmt(r['score_err'])} | "
                     f"{fmt(r['nll'])} | {r['pc_p']:.3f} / {r['pc_r']:.3f} | {r['pcfew_p']:.3f} / {r['pcfew_r']:.3f} | "
                     f"{r['eulerfew_p']:.3f} / {r['eulerfew_r']:.3f} | {r['ode_p']:.3f} / {r['ode_r']:.3f} ({r['ode_nfe']}) | "
                     f"{fmt(r['nfe_to_quality'])} |")
    return "\n".join(lines)


def image_table(cfg, results):
    lines = [f"| data | method | Asym | NAsym | NLL (bits/dim, NFE) | P / R PC-{cfg.image_pc_steps} | "
             f"P / R PC-{cfg.few_steps} |", "|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        ds, method = key.split("/")
        lines.append(f"| {ds} | {method} | {fmt(r['asym'])} | {fmt(r['nasym'])} | {r['bpd']:.3f} ({r['nll_nfe']}) | "
                     f"{r['pc_p']:.3f} / {r['pc_r']:.3f} | {r['pcfew_p']:.3f} / {r['pcfew_r']:.3f} |")
    return "\n".join(lines)


def ae_table(rows):
    lines = ["| Section 6 autoencoder | Asym | NAsym | DSM loss (test) | ||R - W|| / ||W|| |", "|---|---|---|---|---|"]
    for k, r in rows.items():
        lines.append(f"| {k} | {fmt(r['asym'])} | {fmt(r['nasym'])} | {r['dsm']:.4f} | {r['r_minus_w']:.3f} |")
    return "\n".join(lines)


def plot_image_rows(path: str, rows: dict, n: int, cell: float):
    """One strip of the first n images per row ({title: (N, H, W, C) in [0, 1]}), clipped, on the fixed [0, 1]
    grey scale; cell: inches of figure width per image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 1, figsize=(n * cell, len(rows) * 0.95))
    for ax, (title, x) in zip(np.atleast_1d(axes), rows.items()):
        x = np.clip(x[:n], 0, 1)
        ax.imshow(np.concatenate(list(x[..., 0] if x.shape[-1] == 1 else x), axis=1), cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
        ax.set_title(title, fontsize=7, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_all(cfg, run_dir, toy_res, toy_samples, img_res, img_samples, logger_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if toy_res:
        toys = list(dict.fromkeys(k.split("/")[0] for k in toy_res))
        methods = list(dict.fromkeys(k.split("/")[1] for k in toy_res))
        for tag, title in (("pc", f"PC sampler, {cfg.pc_steps} steps"), ("few", f"PC sampler, {cfg.few_steps} steps")):
            fig, axes = plt.subplots(len(toys), len(methods) + 1, figsize=(2.6 * (len(methods) + 1), 2.6 * len(toys)),
                                     squeeze=False)
            for i, toy in enumerate(toys):
                cols = [("data", None)] + [(m, f"{toy}/{m}") for m in methods]
                for j, (m, key) in enumerate(cols):
                    ax = axes[i, j]
                    pts = toy_samples[f"{toy}/{methods[0]}"]["test"] if key is None else toy_samples.get(key, {}).get(tag)
                    if pts is not None:
                        ax.scatter(pts[:, 0], pts[:, 1], s=0.5, alpha=0.5)
                    ax.set_xlim(-9, 9), ax.set_ylim(-9, 9), ax.set_xticks([]), ax.set_yticks([])
                    if i == 0:
                        ax.set_title(m, fontsize=9)
                    if j == 0:
                        ax.set_ylabel(toy, fontsize=9)
            fig.suptitle(title)
            fig.tight_layout()
            fig.savefig(os.path.join(run_dir, f"toy_samples_{tag}.png"), dpi=110)
            plt.close(fig)
        sde = VESDE(cfg.toy_sigma_min, cfg.toy_sigma_max)
        sig = sde.sigma(M.noise_levels(cfg.n_levels))
        fig, axes = plt.subplots(2, len(toys), figsize=(4 * len(toys), 6.5), squeeze=False)
        for j, toy in enumerate(toys):
            for m in methods:
                r = toy_res.get(f"{toy}/{m}")
                if r is None:
                    continue
                axes[0, j].plot(sig, np.maximum(r["asym_levels"], 1e-12), "o-", ms=3, label=m)
                axes[1, j].plot(sig, np.maximum(r["nasym_levels"], 1e-12), "o-", ms=3, label=m)
            for i, lab in enumerate(("Asym", "NAsym")):
                axes[i, j].set_xscale("log"), axes[i, j].set_yscale("log"), axes[i, j].set_ylabel(lab)
                axes[i, j].set_xlabel("sigma")
            axes[0, j].set_title(toy)
        axes[0, 0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(run_dir, "asymmetry_vs_noise.png"), dpi=110)
        plt.close(fig)
    if img_samples:
        n = 64
        fig, axes = plt.subplots(1, 2 * len(img_samples), figsize=(4 * 2 * len(img_samples), 4.3), squeeze=False)
        for j, (key, s) in enumerate(img_samples.items()):
            for k, tag in enumerate(("pc", "few")):
                x = s[tag][:n]
                h, w, c = x.shape[1:]
                g = int(np.sqrt(len(x)))  # an 8x8 grid, smaller when fewer samples were drawn
                grid = x[: g * g].reshape(g, g, h, w, c).transpose(0, 2, 1, 3, 4).reshape(g * h, g * w, c)
                ax = axes[0, 2 * j + k]
                ax.imshow(grid.squeeze(-1) if c == 1 else grid, cmap="gray" if c == 1 else None, vmin=0, vmax=1)
                steps = cfg.image_pc_steps if tag == "pc" else cfg.few_steps
                ax.set_title(f"{key} PC-{steps}", fontsize=9), ax.axis("off")
        fig.tight_layout()
        fig.savefig(os.path.join(run_dir, "image_samples.png"), dpi=110)
        plt.close(fig)
    # learning curves from metrics.csv
    curves = {}
    with open(logger_path) as f:
        for row in csv.DictReader(f):
            if row["key"] == "dsm" and not row["run"].startswith("ae/"):
                curves.setdefault(row["run"], ([], []))
                curves[row["run"]][0].append(int(row["step"]))
                curves[row["run"]][1].append(float(row["value"]))
    if curves:
        groups = list(dict.fromkeys(k.split("/")[0] for k in curves))
        fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.2), squeeze=False)
        for j, g in enumerate(groups):
            for k, (st, v) in curves.items():
                if k.startswith(g + "/"):
                    axes[0, j].plot(st, v, label=k.split("/")[1])
            axes[0, j].set_title(g), axes[0, j].set_xlabel("step"), axes[0, j].set_ylabel("DSM loss")
            axes[0, j].set_yscale("log")
        axes[0, 0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(run_dir, "learning_curves.png"), dpi=110)
        plt.close(fig)


# ----------------------------------------------------------------------------- main


def main(cfg: Config) -> dict:
    if cfg.resume:
        run_dir = cfg.resume
    else:
        run_dir = os.path.join(cfg.out_dir, f"{cfg.config}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(os.path.join(run_dir, "samples"), exist_ok=True)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(dataclasses.asdict(cfg), f, indent=2)
    res_path = os.path.join(run_dir, "results.json")
    results = json.load(open(res_path)) if os.path.exists(res_path) else {"toys": {}, "images": {}, "ae": {}}
    mesh = make_mesh(cfg.n_devices) if cfg.n_devices != 1 else None
    logger = Logger(run_dir)
    print(f"run folder: {run_dir}   devices: {jax.devices()}")

    def save():
        with open(res_path, "w") as f:
            json.dump(results, f, indent=1)

    def run_or_resume(section, key, experiment, summary):
        """One part of the job: kept from results.json when an earlier run finished it (its samples reloaded),
        otherwise run (resuming from its checkpoint, if any), saved and summarised in one line."""
        path = os.path.join(run_dir, "samples", key.replace("/", "-") + ".npz")
        if key in results[section]:
            print(f"  {key}: done in an earlier run, kept")
            return dict(np.load(path))
        t0 = time.time()
        results[section][key], samples = experiment()
        np.savez_compressed(path, **samples)
        print(f"  {key}: {summary(results[section][key])}  ({time.time() - t0:.0f}s)", flush=True)
        save()
        return samples

    toy_samples, img_samples = {}, {}
    for toy in cfg.toys:
        for method in cfg.methods:
            toy_samples[f"{toy}/{method}"] = run_or_resume(
                "toys", f"{toy}/{method}", lambda: toy_experiment(cfg, toy, method, run_dir, logger, mesh),
                lambda r: (f"Asym {r['asym']:.4g}  NAsym {r['nasym']:.4g}  score err {r['score_err']:.4g}  "
                           f"NLL {r['nll']:.3f}  P/R PC-{cfg.few_steps} {r['pcfew_p']:.3f}/{r['pcfew_r']:.3f}"))
    if cfg.image_dataset:
        x_train = D.load_images(cfg.image_dataset, "train", cfg.image_root or None, cfg.image_size)
        x_eval = eval_images(cfg, cfg.image_eval_samples)  # loaded before training: a missing test file fails now
        for method in cfg.image_methods:
            img_samples[f"{cfg.image_dataset}/{method}"] = run_or_resume(
                "images", f"{cfg.image_dataset}/{method}",
                lambda: image_experiment(cfg, method, run_dir, logger, mesh, x_train, x_eval),
                lambda r: f"Asym {r['asym']:.4g}  NAsym {r['nasym']:.4g}  NLL {r['bpd']:.3f} bits/dim")
    if cfg.ae_steps > 0 and not results["ae"]:
        results["ae"] = autoencoder_demo(cfg, run_dir, logger)
        save()
    logger.close()
    plot_all(cfg, run_dir, results["toys"], toy_samples, results["images"], img_samples, logger.path)
    report = [f"# Results ({cfg.config}, seed {cfg.seed})"]
    if results["toys"]:
        report += ["", f"2-D toys, {cfg.toy_steps} steps, batch {cfg.toy_batch}, lambda {cfg.lam}, K {cfg.n_slices}; "
                   f"Asym/NAsym/score err averaged over {cfg.n_levels} noise levels; NLL by the probability-flow ODE "
                   f"(RK45, exact divergence) on {cfg.nll_samples} test points; P/R with k = {cfg.nearest_k} on "
                   f"{cfg.eval_samples} points.", "", toy_table(cfg, results["toys"])]
    if results["images"]:
        report += ["", f"Images ({cfg.image_dataset}{f' {cfg.image_size}x{cfg.image_size}' if cfg.image_size else ''}), {cfg.image_steps} steps, batch {cfg.image_batch}, lambda "
                   f"{cfg.image_lam}; EMA weights; Asym by Hutchinson (K = 8); NLL by the ODE with Hutchinson "
                   f"divergence.", "", image_table(cfg, results["images"])]
    if results["ae"]:
        report += ["", ae_table(results["ae"])]
    text = "\n".join(report)
    with open(os.path.join(run_dir, "results.md"), "w") as f:
        f.write(text + "\n")
    print("\n" + text)
    return results


if __name__ == "__main__":
    main(parse_args())

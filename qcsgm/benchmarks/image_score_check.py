"""Is an image score model (or the sampler) the reason its samples are poor? A check against two reference scores.

For one trained image model (trained here first when run_dir has no checkpoint at --image-steps):
  - the data's largest pairwise distance next to the config's sigma_max (Song & Ermon's rule: sigma_max ~ it);
  - the per-dimension DSM error ||sigma s(x + sigma z) + z||^2 / D on the test images at 7 noise levels for the
    model's EMA weights and for two references (`data.image_reference_scores`): the best *linear* score (a
    Gaussian fitted to the training images; a trained network should beat it, and it is near-exact at large
    sigma) and the exact score of the training set (a mixture: good at large sigma, memorises at small sigma);
  - samples from one x(1) (as benchmarks/image_few_step.py draws it) with the official RK45 ODE (rtol 1e-4,
    atol 1e-6, noise removal) and PC (100 steps, snr 0.16) for the model and both references: precision /
    recall (k = 3) against the test images and the RK45 NFE. The mixture's samples check the samplers end to
    end (an exact score through them must give digits);
  - with --hybrid-above S: the model's score below sigma = S and the Gaussian reference above it (RK45):
    isolates how much of the sample error comes from the model's large-sigma scores;
  - Asym (Hutchinson, K = 8) of the model on 64 test images at the 10 levels train.py uses.
Both samplers run their loops on the host, one jitted step at a time (CSBM's score is ~4x slower inside a jitted
loop on CPU); --rk45-in-jit / --pc-in-jit run them as one jitted while_loop / scan instead.
--rk45-max-steps N bounds every RK45 solve to N attempted steps (2 + 6 N NFE; default 2000, the solver's own cap):
a solve that hits it is reported as "cap hit at <NFE>" with the sigma it stopped at, and gets no P / R (its x is
not a sample). --skip-references samples only the model (the references' rows do not depend on it), e.g. for a
slow model such as CSBM:

    python benchmarks/image_score_check.py runs/fewstep-digits-5000-seed2 --method csbm --skip-references --rk45-max-steps 200

    python benchmarks/image_score_check.py runs/fewstep-digits-5000-seed2 --hybrid-above 1
    python benchmarks/image_score_check.py runs/sigmax5-digits-5000-seed2 --image-steps 5000 --image-sigma-max 5 --seed 2
Without arguments it trains the quick config's digits USBM in runs/score-check (make bench).
Writes <run_dir>/score_check_<method>.json and .png (rows: test images, then each sampler).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train  # noqa: E402
from configs import CONFIGS  # noqa: E402
from qcsbm import data as D  # noqa: E402
from qcsbm import metrics as M  # noqa: E402
from qcsbm import sampling as S  # noqa: E402
from qcsbm.config import Config, load_run_config, replace  # noqa: E402

OFFICIAL_TOL = (1e-4, 1e-6)


def sigma_to_t(sde, sigma):
    return jnp.log(sigma / sde.sigma_min) / np.log(sde.sigma_max / sde.sigma_min)


def reference_score(ref, sde, x, t):
    return ref(x, sde.sigma(t))


def hybrid_score(ref, sde, above, model_score, x, t):
    return jnp.where(sde.sigma(t)[:, None, None, None] > above, ref(x, sde.sigma(t)), model_score(x, t))


def rk45_sample(f, sde, key, x_init, max_steps, in_jit=False):
    """The official image RK45 solve from x_init, capped at max_steps attempted steps. Returns (samples or None,
    info): info has the NFE and, when the cap stopped it before t = eps, cap_hit and the t / sigma it reached.
    The solver's loop runs on the host (`sampling.ode_sample_host` via `train.image_sampler`: CSBM's score is 3-4x
    slower inside a jitted loop on CPU); in_jit: the whole solve as one jitted lax.while_loop (train._ode_sample)."""
    x, nfe, t_end = train.image_sampler("ode", host=not in_jit)(
        f, sde, key, tuple(x_init.shape), method="rk45", rtol=OFFICIAL_TOL[0], atol=OFFICIAL_TOL[1], denoise=True,
        x_init=x_init, max_steps=max_steps, return_t=True)
    t_end = float(t_end)
    if t_end > float(np.float32(S.SAMPLING_EPS)):  # the solver sets t to eps (float32) exactly on its last step
        return None, dict(nfe=int(nfe), cap_hit=True, t_end=t_end, sigma_end=float(sde.sigma(t_end)))
    return x, dict(nfe=int(nfe), cap_hit=False)


def pc_sample(f, sde, key, shape, n_steps, in_jit=False):
    """PC sampling (snr 0.16, one corrector step) with its loop over noise levels on the host
    (`sampling.pc_sample_host`, for the same reason as RK45's); in_jit: as one jitted lax.scan (train._pc_sample)."""
    return train.image_sampler("pc", host=not in_jit)(f, sde, key, shape, n_steps=n_steps)


def dsm_per_level(fns, sde, x, sigmas, key):
    """Per-dimension ||sigma s + z||^2 / D on x + sigma z, the same z for every score function."""
    out = {name: [] for name in fns}
    d = int(np.prod(x.shape[1:]))
    for i, sig in enumerate(sigmas):
        z = jax.random.normal(jax.random.fold_in(key, i), x.shape)
        t = jnp.full((len(x),), sigma_to_t(sde, sig))
        for name, f in fns.items():
            s = f(x + sig * z, t)
            out[name].append(float(jnp.mean(jnp.sum((sig * s + z) ** 2, (1, 2, 3)))) / d)
    return out


def load_cfg(a, fields):
    if os.path.exists(os.path.join(a.run_dir, "config.json")):
        cfg = load_run_config(a.run_dir)
    else:
        cfg = replace(Config(), **CONFIGS[a.config], config=a.config)
    return replace(cfg, **{n: getattr(a, n) for n in fields if getattr(a, n) is not None})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", nargs="?", default=os.path.join("runs", "score-check"),
                    help="a run folder (its config.json is used); without a checkpoint the model is trained there")
    ap.add_argument("--config", default="quick", choices=sorted(CONFIGS), help="used when run_dir has no config.json")
    ap.add_argument("--method", default="usbm")
    ap.add_argument("--hybrid-above", type=float, default=0.0, help="also sample with the Gaussian score above it")
    ap.add_argument("--pc-steps", type=int, default=100)
    ap.add_argument("--n-samples", type=int, default=0, help="test images and samples (0 = all test images)")
    ap.add_argument("--rk45-max-steps", type=int, default=2000,
                    help="cap on RK45's attempted steps (2 + 6 N NFE); a capped solve is reported, not scored")
    ap.add_argument("--rk45-in-jit", action="store_true",
                    help="run each RK45 solve as one jitted while_loop (slow for CSBM on CPU) instead of a host loop")
    ap.add_argument("--pc-in-jit", action="store_true",
                    help="run each PC sampler as one jitted lax.scan (slow for CSBM on CPU) instead of a host loop")
    ap.add_argument("--skip-references", action="store_true",
                    help="sample only the model (the reference scores stay in the DSM table)")
    fields = ("image_steps", "image_sigma_max", "image_lr", "image_ema", "nf", "seed")
    for name in fields:
        ap.add_argument("--" + name.replace("_", "-"), type=type(getattr(Config(), name)), default=None)
    a = ap.parse_args(argv)
    cfg = load_cfg(a, fields)
    os.makedirs(os.path.join(a.run_dir, "ckpt"), exist_ok=True)
    with open(os.path.join(a.run_dir, "config.json"), "w") as f:
        json.dump(dataclasses.asdict(cfg), f, indent=2)
    bins = D.n_bins(cfg.image_dataset)
    x_train = D.load_images(cfg.image_dataset, "train", cfg.image_root or None, cfg.image_size)
    xt = jnp.asarray(train.eval_images(cfg, a.n_samples))
    dmax = D.max_pairwise_distance(D.dequantize(x_train, bins, np.random.default_rng(0)))
    print(f"{cfg.image_dataset}: largest pairwise distance of the training images {dmax:.2f}; "
          f"sigma_min {cfg.image_sigma_min}, sigma_max {cfg.image_sigma_max}", flush=True)

    logger = train.Logger(a.run_dir)
    model, sde, state, train_s = train.image_train(cfg, a.method, a.run_dir, logger, None, x_train)
    logger.close()
    print(f"{a.method}: step {int(state.step)}, trained here {train_s:.1f} s", flush=True)
    net = Partial(model.score, jax.device_get(state.ema_params))
    gauss, mix = D.image_reference_scores(x_train, bins)
    refs = {k: Partial(functools.partial(reference_score, r, sde)) for k, r in (("gaussian", gauss), ("mixture", mix))}

    sigmas = np.geomspace(cfg.image_sigma_min, cfg.image_sigma_max, 7)
    dsm = dsm_per_level({"model": jax.jit(net), **{k: jax.jit(v) for k, v in refs.items()}}, sde, xt, sigmas,
                        jax.random.PRNGKey(7))
    print("\n| sigma | DSM / D model | gaussian (linear) | mixture (training set) |\n|---|---|---|---|")
    for i, s in enumerate(sigmas):
        print(f"| {s:.3g} | {dsm['model'][i]:.4f} | {dsm['gaussian'][i]:.4f} | {dsm['mixture'][i]:.4f} |")

    x_init = sde.sigma_max * jax.random.normal(jax.random.PRNGKey(cfg.seed + 3), xt.shape)
    key = jax.random.PRNGKey(cfg.seed + 2)
    fns = {"model": net, **({} if a.skip_references else refs)}
    if a.hybrid_above > 0:
        fns[f"model, gaussian above {a.hybrid_above:g}"] = Partial(functools.partial(hybrid_score, gauss, sde, a.hybrid_above), net)
    res, samples = {}, {"test images": np.asarray(xt)}
    print("\n| score | sampler | NFE | P / R | s |\n|---|---|---|---|---|")
    for name, f in fns.items():
        samplers = [("rk45", None)] + ([("pc", a.pc_steps)] if not name.startswith("model,") else [])
        for sname, n in samplers:
            t0 = time.time()
            label = f"{sname}{'' if n is None else f'-{n}'}"
            if sname == "rk45":
                x, info = rk45_sample(f, sde, key, x_init, a.rk45_max_steps, a.rk45_in_jit)
            else:
                x, info = pc_sample(f, sde, key, tuple(xt.shape), n, a.pc_in_jit), dict(nfe=2 * n)
            res[f"{name} {label}"] = info
            if x is None:
                print(f"| {name} | {label} | cap hit at {info['nfe']} (stopped at t {info['t_end']:.3g}, sigma "
                      f"{info['sigma_end']:.3g}) | - | {time.time() - t0:.1f} |", flush=True)
                continue
            x = np.clip(np.asarray(x), 0, 1)
            p, r = M.precision_recall(xt, x, cfg.nearest_k)
            info.update(precision=p, recall=r)
            samples[f"{name} {label}"] = x
            print(f"| {name} | {label} | {info['nfe']} | {p:.3f} / {r:.3f} | {time.time() - t0:.1f} |", flush=True)

    t0 = time.time()
    asym, nasym = M.asymmetry_over_levels(net, sde, xt[:64], jax.random.PRNGKey(cfg.seed + 2), cfg.n_levels,
                                          exact=False, n_slices=8)
    print(f"\nAsym of the model (64 test images, K = 8, mean over {cfg.n_levels} levels up to sigma_max): "
          f"{asym.mean():.4g} (NAsym {nasym.mean():.4g}), {time.time() - t0:.1f} s")
    out = dict(max_pairwise_distance=dmax, sigmas=sigmas.tolist(), dsm=dsm, samples=res, asym=float(asym.mean()),
               nasym=float(nasym.mean()), asym_levels=asym.tolist(), step=int(state.step), train_s=train_s)
    with open(os.path.join(a.run_dir, f"score_check_{a.method}.json"), "w") as f:
        json.dump(out, f, indent=1)
    train.plot_image_rows(os.path.join(a.run_dir, f"score_check_{a.method}.png"), samples, n=16, cell=0.75)


if __name__ == "__main__":
    main()

"""DLSM main job: score model (DSM) -> classifiers (CE / DLSM / DLSM+CE) -> guided sampling -> metrics.

    python train.py                         # the embedded default (config `quick`, 2-D moons, CPU)
    python train.py --config digits         # images (sklearn digits)
    python train.py --config paper-cifar10 --data-dir /path/to/cifar   # paper scale, GPUs
    python train.py --resume runs/quick-20260101-120000                # continue a run

Writes runs/<config>-<time>/: config.json, metrics.csv (+ TensorBoard events), checkpoints
(ckpt_<phase>.msgpack), results.json / results.md, and PNGs (samples, score-error curves, losses).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import sys
import time
import zlib
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from tqdm import tqdm

import configs
from dlsm import data as data_lib
from dlsm import evalnets, metrics, models, sampling, steps
from dlsm.losses import LOSS_TYPES, dlsm_loss_fixed
from dlsm.oracle import GaussianMixture
from dlsm.sde import VESDE


@dataclasses.dataclass
class Config:
    """Every option of the run. `--config NAME` picks a named config; other flags override it."""

    config: str = "quick"  # named config: quick, digits, fashion-mnist, paper-toy, paper-cifar10, paper-cifar100
    dataset: str = "moons"  # moons, digits, fashion_mnist, mnist, cifar10, cifar100
    data_dir: str = ""  # folder of IDX files / CIFAR pickles ("" = Debian's Fashion-MNIST)
    limit_train: Optional[int] = None  # use only the first N training examples
    seed: int = 0
    # VE SDE
    sigma_min: float = 1e-2
    sigma_max: float = 40.0
    # score model (trained once, by denoising score matching)
    score_model: str = "toy_mlp"  # toy_mlp or unet
    toy_nf: int = 16  # toy MLP width factor (16 -> 256/128/64 as in the paper)
    toy_arch: str = "film"  # film (sigma embedding in every layer, output / sigma) or paper (official concat MLP)
    unet_ch: int = 32
    unet_ch_mult: tuple[int, ...] = (1, 2)
    unet_res_blocks: int = 1
    score_steps: int = 4000
    score_batch: int = 1000
    score_lr: float = 1e-3
    score_weighting: float = 1.0  # DSM weight sigma^(2 w)
    # classifiers
    classifier: str = "toy_mlp"  # toy_mlp or resnet_cond
    clf_nf: int = 16
    clf_stage_sizes: tuple[int, ...] = (2, 2, 2, 2)
    losses: tuple[str, ...] = ("ce", "dlsm", "total")  # classifiers to train: ce (base), dlsm, total (DLSM+CE)
    clf_steps: int = 2000
    clf_batch: int = 1000
    clf_lr: float = 1e-3
    weighting_dlsm: float = 1.0  # DLSM weight sigma^(2 w)
    weighting_ce: float = 0.0  # CE weight sigma^(-2 w_ce)
    coef: float = 0.125  # total = DLSM + coef * CE
    dlsm_reduce_mean: bool = True  # DLSM residual averaged over data dims (official torch.mean); False: summed
    grad_clip: float = 1.0
    # sampling
    sampler: str = "pc"  # pc (reverse diffusion + Langevin) or ode (probability flow)
    sample_steps: int = 500
    snr: float = 0.16
    n_corrector: int = 1
    samples_per_class: int = 1000
    scaling_factor: float = 4.0  # guidance weight of the "scaling" baseline (CE classifier)
    # evaluation
    prdc_k: int = 5
    eval_sigmas: int = 12  # sigma grid of the score-error curves (oracle data only)
    eval_points: int = 2000
    eval_feature_steps: int = 500  # feature network of the class-wise Frechet distance (images)
    cas_steps: int = 500
    oracle_sample_points: int = 1000  # points per class in the oracle used by the "oracle scores" sampling row (speed); 0 = all
    # run
    out_dir: str = "runs"
    resume: str = ""  # a run folder to continue (its config.json is used; only --losses may be changed, to add classifiers)
    log_every: int = 100
    ckpt_every: int = 1000
    n_devices: int = 1  # data-parallel devices (0 = all visible)


def parse(argv=None) -> Config:
    """--config NAME picks the defaults; with --resume RUN they come from RUN/config.json instead, and
    only the fields in RESUME_MAY_CHANGE may be given (e.g. --losses ce dlsm total adds a classifier)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name, resume = _flag_value(argv, "--config") or "quick", _flag_value(argv, "--resume")
    if name not in configs.NAMES and not any(a in ("-h", "--help") for a in argv):
        raise SystemExit(f"error: unknown config {name!r}; choose one of {', '.join(configs.NAMES)}")
    if resume:
        base = dataclasses.replace(load_run_config(resume), resume=resume)
    else:
        base = Config(config=name, **(configs.get(name) if name in configs.NAMES else {}))
    cfg = tyro.cli(Config, default=base, args=argv, description=__doc__)
    validate(cfg)
    if resume:
        check_resume(cfg, base)
    return cfg


def _flag_value(argv, flag: str):
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


# fields that may differ from a run's config.json when it is resumed: the classifiers to train (a new
# one is trained from the shared initialisation; the finished phases load their checkpoints)
RESUME_MAY_CHANGE = ("resume", "losses")


def load_run_config(run_dir: str) -> Config:
    """The Config a run folder was started with (its config.json). Fields the file lacks (added to
    Config after the run) take the value of the run's named config, as they had then."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no config.json in {run_dir!r}: not a train.py run folder")
    with open(path) as f:
        saved = {k: tuple(v) if isinstance(v, list) else v for k, v in json.load(f).items()}
    name = saved.get("config", "quick")
    return dataclasses.replace(Config(config=name, **(configs.get(name) if name in configs.NAMES else {})), **saved)


def check_resume(cfg: Config, saved: Config):
    changed = [f.name for f in dataclasses.fields(Config)
               if f.name not in RESUME_MAY_CHANGE and getattr(cfg, f.name) != getattr(saved, f.name)]
    if changed:
        raise ValueError(f"--resume continues a run with its config.json; only {', '.join(RESUME_MAY_CHANGE[1:])} "
                         f"may be changed, not {', '.join(changed)}")


def validate(cfg: Config):
    if cfg.dataset not in data_lib.DATASETS:
        raise ValueError(f"unknown dataset {cfg.dataset!r}; choose one of {', '.join(data_lib.DATASETS)}")
    for lt in cfg.losses:
        if lt not in LOSS_TYPES:
            raise ValueError(f"unknown classifier loss {lt!r}; choose from {', '.join(LOSS_TYPES)}")
    if cfg.sampler not in ("pc", "ode"):
        raise ValueError(f"unknown sampler {cfg.sampler!r}; choose pc or ode")
    toy = cfg.dataset == "moons"
    if toy != (cfg.score_model == "toy_mlp") or toy != (cfg.classifier == "toy_mlp"):
        raise ValueError("2-D data (moons) needs toy_mlp models; image data needs unet / resnet_cond")
    if min(cfg.score_batch, cfg.clf_batch, cfg.samples_per_class) <= 0:
        raise ValueError("batch sizes and samples_per_class must be positive")


# ----------------------------------------------------------------------------- logging
class Logger:
    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, "metrics.csv")
        new = not os.path.exists(self.path)
        self.f = open(self.path, "a", newline="")
        self.w = csv.writer(self.f)
        if new:
            self.w.writerow(["phase", "step", "name", "value"])
        try:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(os.path.join(run_dir, "tb"))
        except Exception:  # tensorboardX missing: CSV only
            self.tb = None

    def log(self, phase, step, **vals):
        for k, v in vals.items():
            v = float(v)
            self.w.writerow([phase, step, k, v])
            if self.tb is not None:
                self.tb.add_scalar(f"{phase}/{k}", v, step)
        self.f.flush()

    def close(self):
        self.f.close()
        if self.tb is not None:
            self.tb.close()


# ----------------------------------------------------------------------------- phases
class RunKeys(NamedTuple):
    """The run's PRNG keys, one per stage: jax.random.split(PRNGKey(seed), 5) in this order."""

    score: jax.Array  # score model initialisation
    clf: jax.Array  # the classifiers' shared initialisation
    train: jax.Array  # training noise: the score phase's, and each classifier phase's folded with its loss name
    sample: jax.Array  # sampler noise (folded with the class: the same for every guidance)
    eval: jax.Array  # evaluation nets (feature network, CAS)


def run_keys(seed: int) -> RunKeys:
    """The stage keys of a run with this seed; benchmarks use them to repeat a run's draws."""
    return RunKeys(*jax.random.split(jax.random.PRNGKey(seed), 5))


def build(cfg: Config, num_classes: int):
    score_kw = dict(arch=cfg.toy_arch, nf=cfg.toy_nf, ch=cfg.unet_ch, ch_mult=cfg.unet_ch_mult, num_res_blocks=cfg.unet_res_blocks)
    clf_kw = dict(arch=cfg.toy_arch, nf=cfg.clf_nf if cfg.classifier != "toy_mlp" else cfg.toy_nf, stage_sizes=cfg.clf_stage_sizes)
    return models.build_score_model(cfg.score_model, **score_kw), models.build_classifier(cfg.classifier, num_classes, **clf_kw)


def train_phase(name, cfg, run_dir, logger, init_params, opt, step_fn, n_steps, batch, x, y, key, mesh, extra=()):
    """Generic loop: random minibatches, checkpoint every ckpt_every, resume from ckpt_<name>."""
    ckpt = os.path.join(run_dir, f"ckpt_{name}.msgpack")
    state = dict(params=init_params, opt_state=opt.init(init_params), step=0, key=key)
    if os.path.exists(ckpt):
        state = steps.load_checkpoint(ckpt, state)
        print(f"[{name}] resumed at step {int(state['step'])}")
    params, opt_state, key = state["params"], state["opt_state"], state["key"]
    start = int(state["step"])
    if mesh is not None:
        params, opt_state = steps.replicate(params, mesh), steps.replicate(opt_state, mesh)
    rng = np.random.default_rng([cfg.seed, start, zlib.crc32(name.encode())])  # str hash() is salted per process
    losses = []
    for i in tqdm(range(start, n_steps), desc=name, initial=start, total=n_steps, mininterval=2.0, disable=start >= n_steps):
        idx = rng.integers(0, len(x), batch)
        xb = x[idx] if y is None else (x[idx], y[idx])
        xb = xb if isinstance(xb, tuple) else (xb,)
        if mesh is not None:
            xb = tuple(steps.shard_batch(jnp.asarray(a), mesh) for a in xb)
        key, k = jax.random.split(key)
        out = step_fn(params, opt_state, *extra, *xb, k)
        params, opt_state, loss = out[0], out[1], out[2]
        if (i + 1) % cfg.log_every == 0 or i + 1 == n_steps:
            steps.check_finite(loss, name, i + 1)
            aux = {k2: v for k2, v in out[3].items()} if len(out) > 3 else {}
            logger.log(name, i + 1, loss=loss, **aux)
            losses.append((i + 1, float(loss)))
        if (i + 1) % cfg.ckpt_every == 0 or i + 1 == n_steps:
            steps.save_checkpoint(ckpt, dict(params=params, opt_state=opt_state, step=i + 1, key=key))
    return jax.device_get(params), losses


def main(cfg: Config):
    t0 = time.time()
    if cfg.resume:  # cfg comes from parse(["--resume", run_dir, ...]): the saved config (+ losses)
        run_dir = cfg.resume
        saved = load_run_config(run_dir)
        check_resume(cfg, saved)
        if cfg.losses != saved.losses:  # a classifier added: the folder's config.json records it
            with open(os.path.join(run_dir, "config.json"), "w") as f:
                json.dump(dataclasses.asdict(dataclasses.replace(cfg, resume="")), f, indent=2)
    else:
        run_dir = os.path.join(cfg.out_dir, f"{cfg.config}-{time.strftime('%Y%m%d-%H%M%S')}")
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(dataclasses.asdict(dataclasses.replace(cfg, resume="")), f, indent=2)
    print(f"run dir: {run_dir}")
    logger = Logger(run_dir)

    x, y, xt, yt = data_lib.load(cfg.dataset, cfg.data_dir, cfg.limit_train)
    num_classes = int(y.max()) + 1
    toy = cfg.dataset == "moons"
    sde = VESDE(cfg.sigma_min, cfg.sigma_max)
    score_model, clf = build(cfg, num_classes)
    mesh = steps.make_mesh(cfg.n_devices) if cfg.n_devices != 1 else None
    keys = run_keys(cfg.seed)
    dummy_sigma = jnp.ones((2,))

    # 1) score model, denoising score matching
    opt = steps.make_optimizer(cfg.score_lr, cfg.grad_clip)
    p0 = score_model.init(keys.score, jnp.asarray(x[:2]), dummy_sigma)
    score_step = steps.make_score_step(score_model, sde, opt, cfg.score_weighting)
    score_params, score_losses = train_phase("score", cfg, run_dir, logger, p0, opt, score_step,
                                             cfg.score_steps, cfg.score_batch, x, None, keys.train, mesh)
    curves = {"score": score_losses}

    # 2) classifiers: same initialisation, CE / DLSM / DLSM+CE
    c0 = clf.init(keys.clf, jnp.asarray(x[:2]), dummy_sigma)
    clf_params = {}
    for lt in cfg.losses:
        opt, step_fn, k_lt = classifier_trainer(cfg, clf, score_model, sde, lt, keys.train)
        sp = steps.replicate(score_params, mesh) if mesh is not None else score_params
        clf_params[lt], curves[f"clf_{lt}"] = train_phase(f"clf_{lt}", cfg, run_dir, logger, c0, opt, step_fn, cfg.clf_steps,
                                                          cfg.clf_batch, x, y, k_lt, mesh, extra=(sp,))

    score_fn = lambda xx, s: score_model.apply(score_params, xx, s)
    logits = {lt: (lambda p: (lambda xx, s: clf.apply(p, xx, s)))(clf_params[lt]) for lt in cfg.losses}

    rows = guidance_rows(cfg)
    oracle = GaussianMixture.from_data(x, y) if toy else None
    if toy:
        rows.append(("oracle scores", "oracle", 1.0))

    results = {r[0]: {} for r in rows}

    # 3) score errors against the oracle (2-D only), over a sigma grid
    if toy:
        sig_grid = toy_sigma_grid(cfg)
        idx, zs = toy_eval_draw(cfg, len(x), len(sig_grid))  # training points (see the README: not held out)
        err_curves = metrics.oracle_score_errors(x[idx], y[idx], zs, sig_grid, oracle, score_fn,
                                                 [(name, logits[lt], scale) for name, lt, scale in rows if lt != "oracle"])
        for name, d in err_curves.items():
            if name in results:
                results[name]["sigma*D_L (likelihood score err)"] = float(np.mean(d["likelihood"]))
                results[name]["sigma*D_P (posterior score err)"] = float(np.mean(d["posterior"]))
        with open(os.path.join(run_dir, "score_errors.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["method", "kind", "sigma", "sigma_times_mean_l2_error"])
            for name, d in err_curves.items():
                for kind, vals in d.items():
                    for sg, v in zip(sig_grid, vals):
                        w.writerow([name, kind, f"{sg:.5g}", f"{v:.6g}"])
        plot_score_errors(sig_grid, err_curves, os.path.join(run_dir, "score_errors.png"))

    # 3b) images (no oracle): held-out posterior-score error via the DLSM loss on the test split; the rows
    # differ exactly by their score error (Theorem 1, see heldout_dlsm).
    if not toy:
        sig_grid, heldout = heldout_dlsm(cfg, score_fn, clf.apply, xt, yt)
        params_of = lambda lt: clf_params.get(lt, clf_params[cfg.losses[0]])
        reference = heldout(params_of(cfg.losses[0]), 0.0)
        results["_heldout DLSM loss, score model alone (g = 0)"] = reference[0]
        for name, vals in heldout_table(os.path.join(run_dir, "heldout_dlsm.csv"), sig_grid, heldout, rows, params_of,
                                        reference).items():
            results[name].update(vals)

    # 4) guided sampling, every class with every guidance (one compiled sampler per method)
    samples = guided_samples(cfg, rows, score_fn, logits, sde, x, y, keys.sample)
    save_samples(os.path.join(run_dir, "samples.npz"), samples)

    # 5) class-wise metrics: precision/recall/density/coverage, Frechet distance, CAS
    cw, feature_acc = classwise_metrics(cfg, samples, x, y, xt, yt, keys.eval, logger)
    if feature_acc is not None:
        results["_feature_net_test_acc"] = feature_acc
    for name, vals in cw.items():
        results[name].update(vals)

    # 6) outputs
    plot_losses(curves, os.path.join(run_dir, "losses.png"))
    if toy:
        plot_toy_samples(samples, x, y, os.path.join(run_dir, "samples.png"))
    else:
        plot_image_samples(samples, os.path.join(run_dir, "samples.png"))
    table = format_table(results, cfg, time.time() - t0)
    print(table)
    with open(os.path.join(run_dir, "results.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(run_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    logger.close()
    return results, run_dir


def guided_samples(cfg: Config, rows, score_fn, logits, sde, x, y, k_sample) -> dict:
    """{row name: [samples of class 0, 1, ...]} for rows (name, classifier (a key of logits, or "oracle"), guidance
    scale): every class sampled with cfg's sampler, one compiled sampler per row. Every row draws with the same
    noise (k_sample folded with the class), so rows are a paired comparison."""
    num_classes = int(y.max()) + 1
    samples = {}
    shape = (cfg.samples_per_class,) + x.shape[1:]
    for name, lt, scale in tqdm(rows, desc="sampling", mininterval=1.0):
        if lt == "oracle":
            osub = oracle_subset(x, y, cfg.oracle_sample_points, cfg.seed)
            fns = [(lambda cc: (lambda xx, s: osub.score(xx, s[0], cc)))(c) for c in range(num_classes)]
            run = [jax.jit(lambda k, f=f: sampling.sample(k, f, shape, sde, cfg.sampler, cfg.sample_steps, cfg.snr, cfg.n_corrector)) for f in fns]
            draw = lambda k, c: run[c](k)
        else:
            draw = jax.jit(lambda k, c, lt=lt, scale=scale: sampling.sample(
                k, sampling.guided_score(score_fn, logits[lt], c, scale), shape, sde, cfg.sampler, cfg.sample_steps, cfg.snr, cfg.n_corrector))
        samples[name] = [np.asarray(draw(jax.random.fold_in(k_sample, c), c)) for c in range(num_classes)]
    return samples


def classwise_metrics(cfg: Config, samples: dict, x, y, xt, yt, k_eval, logger):
    """({row name: CW precision / recall / density / coverage, CW-FD, off-class % (2-D), CAS}, the feature net's
    test accuracy (images; None in 2-D)). Per class against that class's reference data: the training points in
    2-D (data space), the test split for images (features of a CNN trained on the training split, key
    k_eval folded with 1). CAS: a classifier trained on the samples (key k_eval folded with 2), tested on xt."""
    toy = cfg.dataset == "moons"
    num_classes = int(y.max()) + 1
    feature_acc = None
    if toy:
        feat = lambda a: np.asarray(a).reshape(len(a), -1)  # 2-D: the data space itself
        ref_x, ref_y = x, y
    else:
        fnet, fparams = evalnets.fit_classifier(jax.random.fold_in(k_eval, 1), x, y, num_classes, cfg.eval_feature_steps)
        feature_acc = evalnets.accuracy(fnet, fparams, xt, yt)
        feat = evalnets.make_predictor(fnet, fparams, features=True)  # one compile per input shape
        ref_x, ref_y = xt, yt
    out = {}
    for name, per_class in samples.items():
        prs, fds, row = [], [], {}
        for c in range(num_classes):
            real_c = ref_x[ref_y == c]
            fr, ff = feat(real_c), feat(per_class[c])
            m = metrics.prdc(fr, ff, cfg.prdc_k)
            prs.append(m)
            fds.append(metrics.frechet_distance(fr, ff))
            logger.log(f"eval/{name}", c, **{f"class_{k}": v for k, v in m.items()}, class_fd=fds[-1])
        for k in ("precision", "recall", "density", "coverage"):
            row[f"CW {k}"] = float(np.mean([p[k] for p in prs]))
        row["CW-FD" + (" (2-D)" if toy else " (own features)")] = float(np.mean(fds))
        if toy:  # samples nearest to the other class's data (class-consistency failures)
            row["off-class %"] = 100 * float(np.mean([metrics.off_class_fraction(per_class[c], c, x, y) for c in range(num_classes)]))
        xg = np.concatenate(per_class)
        yg = np.concatenate([np.full(len(s), c, np.int32) for c, s in enumerate(per_class)])
        row["CAS"] = evalnets.classification_accuracy_score(jax.random.fold_in(k_eval, 2), xg, yg, xt, yt, num_classes, cfg.cas_steps)
        out[name] = row
    return out, feature_acc


def classifier_trainer(cfg: Config, clf, score_model, sde, loss_type: str, k_train):
    """(optimiser, step function, key) of the classifier phase clf_<loss_type>: cfg's lr, clip, weightings and coef;
    the key is k_train folded with the loss name (crc32: str hash() is salted per process)."""
    opt = steps.make_optimizer(cfg.clf_lr, cfg.grad_clip)
    step_fn = steps.make_classifier_step(clf, score_model, sde, opt, loss_type, cfg.weighting_dlsm, cfg.weighting_ce, cfg.coef,
                                         cfg.dlsm_reduce_mean)
    return opt, step_fn, jax.random.fold_in(k_train, zlib.crc32(loss_type.encode()) % 2**31)


def heldout_dlsm(cfg: Config, score_fn, apply_fn, xt, yt):
    """(sigma grid, err): err(clf_params, scale) = (mean over the grid, per-sigma list) of the held-out
    DLSM loss of scale * g + s on the test split, sigma^2-weighted, per dimension, fixed noise (seed + 1).
    Theorem 1: E||sigma (scale*g + s) + z||^2 = sigma^2 E||scale*g + s - grad log p(x~|y)||^2 + C(sigma),
    with C(sigma) the same for every classifier; scale 0 is the score model alone."""
    sig_grid = np.geomspace(cfg.sigma_min, cfg.sigma_max, cfg.eval_sigmas)
    rng = np.random.default_rng(cfg.seed + 1)
    zs = [jnp.asarray(rng.standard_normal(xt.shape).astype(np.float32)) for _ in sig_grid]
    xt, yt = jnp.asarray(xt), jnp.asarray(yt)
    loss = jax.jit(lambda p, xx, yy, sg, z, scale: dlsm_loss_fixed(lambda a, s: apply_fn(p, a, s), score_fn, xx, yy, sg, z,
                                                                   1.0, True, scale), static_argnums=(5,))

    def err(params, scale):
        vals = [float(loss(params, xt, yt, jnp.full((len(xt),), sg, jnp.float32), z, scale)) for sg, z in zip(sig_grid, zs)]
        return float(np.mean(vals)), vals

    return sig_grid, err


def heldout_table(path: str, sig_grid, heldout, rows, params_of, reference) -> dict:
    """{row name: held-out DLSM loss, its reduction vs g = 0 (x1e3)} for rows (name, classifier, guidance scale),
    params_of(classifier) giving its parameters, against reference = heldout(params, 0.0) (the score model alone);
    writes heldout_dlsm.csv at path: per row and sigma, heldout_dlsm's per-sigma value."""
    ref, ref_curve = reference
    curves, table = {"score model alone (g = 0)": ref_curve}, {}
    for name, lt, scale in rows:
        val, curves[name] = heldout(params_of(lt), scale)
        table[name] = {"held-out DLSM loss": val, "its reduction vs g=0 (x1e3)": 1e3 * (ref - val)}
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "sigma", "half_mean_sq_residual_sigma2_weighted"])
        for name, vals in curves.items():
            for sg, v in zip(sig_grid, vals):
                w.writerow([name, f"{sg:.5g}", f"{v:.6g}"])
    return table


def save_samples(path: str, samples: dict):
    """samples.npz: one (classes, n, ...) array per row, spaces in the row name replaced by _."""
    np.savez_compressed(path, **{n.replace(" ", "_"): np.stack(v) for n, v in samples.items()})


def guidance_rows(cfg: Config) -> list[tuple[str, str, float]]:
    """The guidance settings compared: (row name, classifier loss, guidance scale)."""
    rows = []
    if "ce" in cfg.losses:
        rows += [("base (CE)", "ce", 1.0), (f"scaling (CE, x{cfg.scaling_factor:g})", "ce", cfg.scaling_factor)]
    if "dlsm" in cfg.losses:
        rows.append(("DLSM only", "dlsm", 1.0))
    if "total" in cfg.losses:
        rows.append(("DLSM + CE", "total", 1.0))
    return rows


def toy_sigma_grid(cfg: Config) -> np.ndarray:
    """The sigma grid of the 2-D score-error curves."""
    return np.geomspace(max(cfg.sigma_min, 1e-2), cfg.sigma_max, cfg.eval_sigmas)


def toy_eval_draw(cfg: Config, n_train: int, n_sigmas: int):
    """The 2-D score-error points and noise: eval_points indices into the n_train training points and one
    (eval_points, 2) noise array per sigma, all from one generator seeded with seed + 1, in this order."""
    rng = np.random.default_rng(cfg.seed + 1)
    idx = rng.choice(n_train, cfg.eval_points, replace=False)
    return idx, [rng.standard_normal((cfg.eval_points, 2)).astype(np.float32) for _ in range(n_sigmas)]


def oracle_subset(x, y, per_class: int, seed: int) -> GaussianMixture:
    """The empirical mixture of a random subset of per_class points of every class (0 = all)."""
    if per_class <= 0:
        return GaussianMixture.from_data(x, y)
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), min(per_class, int(np.sum(y == c))), replace=False)
                          for c in range(int(y.max()) + 1)])
    return GaussianMixture.from_data(x[idx], y[idx])


# ----------------------------------------------------------------------------- reporting
def format_table(results, cfg, seconds):
    rows = [(k, v) for k, v in results.items() if not k.startswith("_")]
    cols = []
    for _, v in rows:
        for c in v:
            if c not in cols:
                cols.append(c)
    lines = [f"DLSM results: config {cfg.config}, dataset {cfg.dataset}, sampler {cfg.sampler}, "
             f"{cfg.samples_per_class} samples/class, {seconds:.0f} s wall", "",
             "| method | " + " | ".join(cols) + " |", "| --- |" + " --- |" * len(cols)]
    for k, v in rows:
        lines.append(f"| {k} | " + " | ".join(f"{v[c]:.4g}" if c in v else "-" for c in cols) + " |")
    for k, v in results.items():
        if k.startswith("_"):
            lines.append(f"\n{k[1:]}: {v:.4g}")
    return "\n".join(lines)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_score_errors(sig, curves, path):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, d in curves.items():
        if "likelihood" in d:
            axes[0].plot(sig, d["likelihood"], marker="o", label=name)
            axes[1].plot(sig, d["posterior"], marker="o", label=name)
        else:
            axes[1].plot(sig, d["prior"], ls="--", color="k", label=name)
    for ax, t in zip(axes, ["likelihood score error  sigma * E||g - grad log p(y|x~)||",
                            "posterior score error  sigma * E||s + g - grad log p(x~|y)||"]):
        ax.set_xscale("log"), ax.set_yscale("log"), ax.set_xlabel("sigma"), ax.set_title(t, fontsize=9), ax.legend(fontsize=7)
    fig.tight_layout(), fig.savefig(path, dpi=100), plt.close(fig)


def plot_losses(curves, path):
    plt = _plt()
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3))
    for ax, (name, c) in zip(np.atleast_1d(axes), curves.items()):
        if c:
            s, l = zip(*c)
            ax.plot(s, l)
        ax.set_title(name), ax.set_xlabel("step"), ax.set_yscale("symlog")
    fig.tight_layout(), fig.savefig(path, dpi=100), plt.close(fig)


def plot_toy_samples(samples, x, y, path):
    plt = _plt()
    n = len(samples) + 1
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 2.6), sharex=True, sharey=True)
    sub = np.random.default_rng(0).choice(len(x), 2000, replace=False)
    axes[0].scatter(x[sub, 0], x[sub, 1], c=y[sub], s=2, cmap="coolwarm"), axes[0].set_title("data")
    for ax, (name, per_class) in zip(axes[1:], samples.items()):
        for c, s in enumerate(per_class):
            ax.scatter(s[:, 0], s[:, 1], s=2, color=["tab:blue", "tab:red"][c % 2], alpha=0.6)
        ax.set_title(name, fontsize=9)
    for ax in axes:
        ax.set_xlim(-45, 45), ax.set_ylim(-30, 30), ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout(), fig.savefig(path, dpi=100), plt.close(fig)


def plot_image_samples(samples, path, per_class: int = 8):
    plt = _plt()
    names = list(samples)
    fig, axes = plt.subplots(1, len(names), figsize=(3 * len(names), 3.4))
    for ax, name in zip(np.atleast_1d(axes), names):
        rows = [np.concatenate(list(np.clip(s[:per_class], 0, 1)), axis=1) for s in samples[name]]
        grid = np.concatenate(rows, axis=0)
        ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9), ax.axis("off")
    fig.tight_layout(), fig.savefig(path, dpi=100), plt.close(fig)


if __name__ == "__main__":
    main(parse())

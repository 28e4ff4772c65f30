"""EBFlow main job: train one flow per objective on the same data, report exact test NLL.

    python train.py                              # embedded default (= --config quick), CPU, minutes
    python train.py --config paper-mnist-fc      # the paper's settings (GPU)
    python train.py --objectives ssm,dsm --steps 500 --lr 3e-4
    python train.py --resume runs/quick-20260101-120000

By default every objective gets the same number of optimisation steps (same data, same batch
size, same seed for the initial parameters); ``--time-budget S`` instead gives each objective the
same S seconds of training wall-clock (``--steps`` is then only an upper bound). Toy runs
(``--arch toy``) also report the paper's KL and Fisher divergence against the exact density. Writes runs/<config>-<time>/: config.json, per-objective
metrics.csv + TensorBoard events + checkpoint.msgpack + samples/inpainting PNGs, and
results.csv / results.md with the table printed at the end.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ebflow import data as D
from ebflow.evaluate import mala_inpaint, sample, test_nll_bpd
from ebflow.flow import ARCHITECTURES, Flow, build_flow
from ebflow.layers import Logit
from ebflow.objectives import OBJECTIVES, ObjectiveConfig
from ebflow.preprocess import to_model_space, to_pixels
from ebflow.toy import make_eval_set, toy_divergences, toy_objective_config, toy_train_batch
from ebflow.training import (check_finite, eval_params, init_state, load_checkpoint, make_mesh, make_optimizer,
                             make_train_step, save_checkpoint, shard)

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
# fields that only the training of one objective reads (its flow is built from its own settings), so they may
# differ per objective (objective_overrides)
PER_OBJECTIVE_FIELDS = ("lr", "lr_decay", "decay_every", "max_decays", "grad_clip", "weight_decay", "ema_decay",
                        "sigma", "eps", "low_energy", "spectral_norm")


@dataclasses.dataclass
class Config:
    """Defaults are the embedded CPU run (``--config quick``)."""

    config: str = "quick"  # named config in configs/<name>.json; its values replace these defaults
    dataset: str = "fashion-mnist"  # fashion-mnist | mnist | digits | cifar10 | sine | swirl | checkerboard | multimodal10
    data_dir: str = ""  # folder with the dataset files ("" = the default location of each dataset)
    image_size: int = 14  # downsample images to this size (0 = native size)
    val_size: int = 10000  # images of the train split held out for validation (MNIST split 50k/10k/10k)
    arch: str = "fc"  # fc | cnn | glow | toy
    num_layers: int = 2  # FC flow: number of fully connected layers
    kernel_size: int = 7  # CNN flow: convolution size
    spectral_norm: bool = False  # CNN flow: spectral norm of the kernels, torch-style power iteration, 1 per step (paper's CIFAR-10 CNN)
    cnn_neg_init: bool = False  # CNN flow: kernels start at minus the Dirac kernel (official neg_init; False: Dirac + 1e-3 noise)
    glow_blocks: int = 2  # Glow: squeeze levels
    glow_block_size: int = 16  # Glow: steps (actnorm, 1x1 conv, coupling) per level
    glow_width: int = 512  # Glow: channels of the coupling nets
    glow_split_prior: bool = True  # Glow: multi-scale, half the channels factored out after each level but the last
    glow_actnorm_init: bool = True  # Glow: data-dependent ActNorm init from the first batch (False: identity)
    glow_actnorm_trainable: bool = True  # Glow: train ActNorm (Glow, the paper); False freezes it at its init, as the official code ran
    glow_coupling: str = "ours"  # Glow coupling/prior nets: ours (alternating halves, SiLU, scale*tanh) | official (second half, LeakyReLU 0.1, 2 tanh(h/2), Conv2dZero)
    alpha: float = 0.3  # smooth leaky ReLU slope
    residual: bool = False  # residual smooth leaky ReLU (paper's CIFAR models)
    objectives: str = "ml,ssm,dsm,fdssm"  # comma-separated subset of ml,sml,ssm,dsm,fdssm
    steps: int = 3000  # optimisation steps per objective (the same for every objective)
    time_budget: float = 0.0  # >0: stop each objective after this many seconds of training (same wall-clock); steps = cap
    batch_size: int = 100
    optimizer: str = "rmsprop"  # rmsprop (paper, images) | adam (paper, toys)
    lr: float = 1e-3
    lr_decay: float = 1.0  # multiply the LR by this every decay_every steps (paper: 0.95 per epoch on MNIST)
    decay_every: int = 0
    max_decays: int = 0  # stop decaying after this many decays (official CNN MultiStepLR: 19 CIFAR, 49 MNIST; 0 = never stop)
    grad_clip: float = 0.0  # global-norm clip (paper: 5.0 for FDSSM; 0 = off)
    weight_decay: float = 0.0  # torch's L2 weight_decay on every parameter, after clipping (official MNIST CNN: 1e-5 for ml, sml, dsm)
    ema_decay: float = 0.999  # EMA of parameters; evaluated weights are the EMA ones (0 = off)
    # per-objective values of the fields in PER_OBJECTIVE_FIELDS, winning over the flat ones above, e.g.
    # {"ml": {"lr_decay": 0.8}} (the official configs set gamma, milestones, clipping, weight decay and spectral norm
    # per objective); JSON on the CLI
    objective_overrides: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    sigma: float = 1.0  # DSM noise std
    eps: float = 1.0  # FDSSM radius
    slices: int = 1  # SSM random projections
    low_energy: float = 0.0  # lambda of the low-energy regulariser
    augment: bool = False  # random flip and +-1 px edge-padded shift of each training image (official CIFAR-10 loader, every run)
    map: bool = True  # MaP: logit preprocessing outside the model (False: inside, score matching in pixel space)
    logit_smoothness: float = 0.5
    toy_smoothing: float = 0.375  # 2-D toys: std of the Gaussian smoothing of the data
    eval_batch: int = 500
    log_every: int = 50
    eval_every: int = 1000  # validation NLL every this many steps (0 = only at the end)
    ckpt_every: int = 500
    n_samples: int = 64
    inpaint_steps: int = 300  # MALA steps for the inpainting figure (0 = skip)
    inpaint_step_size: float = 0.5  # MALA step h (accept ~0.9 on the quick config)
    num_devices: int = 1  # >1: data parallel over a device mesh (batch split over devices)
    seed: int = 0
    out_dir: str = "runs"
    resume: str = ""  # a previous run folder to continue (same config is reloaded from it)


def load_named_config(name: str) -> dict:
    path = os.path.join(CONFIG_DIR, f"{name}.json")
    if not os.path.exists(path):
        names = sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith(".json"))
        raise ValueError(f"unknown config {name!r}; choose one of {names}")
    with open(path) as f:
        values = json.load(f)
    fields = {f.name for f in dataclasses.fields(Config)}
    bad = [k for k in values if k not in fields and not k.startswith("_")]
    if bad:
        raise ValueError(f"config {name!r} has unknown fields {bad}")
    return {k: v for k, v in values.items() if not k.startswith("_")}


def parse_args(argv=None) -> Config:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default="quick")
    pre.add_argument("--resume", default="")
    known, _ = pre.parse_known_args(argv)
    defaults = dataclasses.asdict(Config())
    if known.resume:
        cfg_path = os.path.join(known.resume, "config.json")
        if not os.path.exists(cfg_path):
            raise FileNotFoundError(f"--resume {known.resume!r}: no config.json there")
        with open(cfg_path) as f:
            defaults.update(json.load(f))
    else:
        defaults.update(load_named_config(known.config))
        defaults["config"] = known.config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        helptext = f"(default: {defaults[f.name]!r})"
        if f.type in ("bool", bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=defaults[f.name], help=helptext)
        elif str(f.type).startswith("dict"):
            parser.add_argument(flag, dest=f.name, type=json.loads, default=defaults[f.name], help=helptext)
        else:
            typ = {"int": int, "float": float, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
            parser.add_argument(flag, dest=f.name, type=typ, default=defaults[f.name], help=helptext)
    cfg = Config(**vars(parser.parse_args(argv)))
    validate(cfg)
    return cfg


def validate(cfg: Config):
    objs = objective_list(cfg)
    bad = [o for o in objs if o not in OBJECTIVES]
    if bad or not objs:
        raise ValueError(f"unknown objective(s) {bad or objs}; choose from {OBJECTIVES}")
    if cfg.dataset not in D.IMAGE_DATASETS + D.TOY_DATASETS:
        raise ValueError(f"unknown dataset {cfg.dataset!r}; choose one of {D.IMAGE_DATASETS + D.TOY_DATASETS}")
    if cfg.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {cfg.arch!r}; choose one of {ARCHITECTURES}")
    if (cfg.dataset in D.TOY_DATASETS) != (cfg.arch == "toy"):
        raise ValueError(f"the 2-D toy datasets go with --arch toy and only with it (got {cfg.dataset!r} with {cfg.arch!r})")
    if cfg.batch_size % max(cfg.num_devices, 1):
        raise ValueError(f"--batch-size {cfg.batch_size} must be divisible by --num-devices {cfg.num_devices}")
    if cfg.augment and cfg.dataset in D.TOY_DATASETS:
        raise ValueError("--augment flips and shifts images; the 2-D toy datasets have none")
    if cfg.num_devices > len(jax.devices()):
        raise ValueError(f"--num-devices {cfg.num_devices} but only {len(jax.devices())} JAX devices are visible")
    for o in objs:
        if objective_config(cfg, o).weight_decay > 0 and cfg.arch == "glow" and not cfg.glow_actnorm_trainable:
            raise ValueError("--weight-decay would still move the frozen ActNorm (--no-glow-actnorm-trainable): "
                             "the decay is added to every parameter's update")


def objective_config(cfg: Config, objective: str) -> Config:
    """The settings ``objective`` trains with: ``cfg`` with its ``objective_overrides`` entry applied."""
    if not isinstance(cfg.objective_overrides, dict):
        raise ValueError(f"objective_overrides must be a JSON object, got {cfg.objective_overrides!r}")
    bad = [o for o in cfg.objective_overrides if o not in OBJECTIVES]
    if bad:
        raise ValueError(f"objective_overrides names unknown objective(s) {bad}; choose from {OBJECTIVES}")
    over = cfg.objective_overrides.get(objective, {})
    if not isinstance(over, dict):
        raise ValueError(f"objective_overrides[{objective!r}] must be an object of field values, got {over!r}")
    bad = [k for k in over if k not in PER_OBJECTIVE_FIELDS]
    if bad:
        raise ValueError(f"objective_overrides[{objective!r}] sets {bad}; only {PER_OBJECTIVE_FIELDS} may differ per objective")
    types = {f.name: f.type for f in dataclasses.fields(Config)}
    return dataclasses.replace(cfg, **{k: {"int": int, "float": float, "bool": bool}[types[k]](v) for k, v in over.items()})


def objective_list(cfg: Config) -> list[str]:
    return [o.strip() for o in cfg.objectives.split(",") if o.strip()]


# ------------------------------------------------------------------------------- setup
def build(cfg: Config):
    """Return (flow, logit-or-None, data dict, is_toy)."""
    is_toy = cfg.dataset in D.TOY_DATASETS
    if is_toy:
        rng = np.random.default_rng(cfg.seed + 12345)
        data = {"val": D.toy_batch(cfg.dataset, 5000, rng, cfg.toy_smoothing),
                "test": D.toy_batch(cfg.dataset, 10000, rng, cfg.toy_smoothing),
                "eval": make_eval_set(cfg.dataset, 10000, cfg.seed + 2024, cfg.toy_smoothing)}  # exact log p, score
        return *build_model(cfg, (2,)), data, True
    train, val, test = D.load_image_dataset(cfg.dataset, cfg.data_dir or None, cfg.image_size or None, cfg.val_size, cfg.seed)
    return *build_model(cfg, train.shape[1:]), {"train": train, "val": val, "test": test}, False


def build_model(cfg: Config, shape) -> tuple[Flow, Logit | None]:
    """The flow for inputs of ``shape`` and the MaP preprocessing (None for toys, or inside the flow without MaP)."""
    if cfg.arch == "toy":
        return build_flow("toy", (2,)), None
    if cfg.arch == "fc":
        kw = dict(alpha=cfg.alpha, residual=cfg.residual, num_layers=cfg.num_layers)
    elif cfg.arch == "cnn":
        kw = dict(alpha=cfg.alpha, residual=cfg.residual, kernel_size=cfg.kernel_size, spectral_norm=cfg.spectral_norm,
                  neg_init=cfg.cnn_neg_init)
    else:
        kw = dict(num_blocks=cfg.glow_blocks, block_size=cfg.glow_block_size, width=cfg.glow_width,
                  split_prior=cfg.glow_split_prior, actnorm_data_init=cfg.glow_actnorm_init,
                  coupling=cfg.glow_coupling, actnorm_trainable=cfg.glow_actnorm_trainable)
    flow = build_flow(cfg.arch, shape, **kw)
    logit = Logit(cfg.logit_smoothness)
    if not cfg.map:  # the preprocessing becomes the model's first (nonlinear) layer
        flow = Flow((logit,) + flow.layers, flow.input_shape)
        logit = None
    return flow, logit


def train_images(cfg: Config, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One training batch of uint8 images, drawn with replacement; flipped and shifted with ``augment``."""
    x = images[rng.integers(0, len(images), cfg.batch_size)]
    return D.cifar_augment(x, rng) if cfg.augment else x


def optimizer_for(cfg: Config):
    """The optimiser of one objective's settings (``objective_config``)."""
    return make_optimizer(cfg.lr, cfg.grad_clip, cfg.lr_decay, cfg.decay_every, cfg.optimizer, cfg.max_decays,
                          cfg.weight_decay)


def evaluate_nll(cfg, flow, params, logit, x, key, is_toy) -> float:
    """Image sets: bits/dim of the discrete data. Toys: NLL in nats of the smoothed density."""
    if is_toy:
        v = float(-jnp.mean(jax.jit(flow.log_prob)(params, jnp.asarray(x, jnp.float32))))
        if not np.isfinite(v):
            raise FloatingPointError("test NLL is not finite")
        return v
    return test_nll_bpd(flow, params, x, key, logit, cfg.eval_batch)


# ------------------------------------------------------------------------------- plots
def save_image_grid(path, imgs, title="", cols=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    imgs = np.asarray(imgs)
    n = imgs.shape[0]
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    h, w, c = imgs.shape[1:]
    grid = np.ones((rows * (h + 1), cols * (w + 1), c))
    for i in range(n):
        r, cc = divmod(i, cols)
        grid[r * (h + 1) : r * (h + 1) + h, cc * (w + 1) : cc * (w + 1) + w] = imgs[i]
    fig = plt.figure(figsize=(4, 4 * rows / cols + 0.3))
    plt.imshow(grid[..., 0] if c == 1 else grid, cmap="gray", vmin=0, vmax=1)
    plt.axis("off")
    plt.title(title, fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def save_curves(path, rows, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set_xlabel("step")
    ax.set_ylabel("training objective (per dim)")
    ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def save_toy_density(path, flow, params, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = np.linspace(-5, 5, 200)
    xx, yy = np.meshgrid(g, g)
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1), jnp.float32)
    dens = np.exp(np.asarray(jax.jit(flow.log_prob)(params, pts))).reshape(200, 200)
    fig = plt.figure(figsize=(3.5, 3.5))
    plt.imshow(dens, extent=(-5, 5, -5, 5), origin="lower", cmap="viridis")
    plt.title(title, fontsize=9)
    plt.axis("off")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


# ------------------------------------------------------------------------------- train
METRICS_FIELDS = ["step", "loss", "val_nll", "seconds"]  # the columns of each objective's metrics.csv


def train_one(cfg: Config, objective: str, data, is_toy, run_dir: str) -> dict:
    cfg = objective_config(cfg, objective)
    flow, logit = build_model(cfg, (2,) if is_toy else data["train"].shape[1:])  # e.g. spectral norm per objective
    out = os.path.join(run_dir, objective)
    os.makedirs(out, exist_ok=True)
    if cfg.objective_overrides.get(objective):
        print(f"[{objective}] per-objective settings: {cfg.objective_overrides[objective]}")
    done_path = os.path.join(out, "result.json")
    if os.path.exists(done_path):  # resumed run: this objective already finished
        with open(done_path) as f:
            done = json.load(f)
        if done["steps"] == cfg.steps or cfg.time_budget > 0:
            return done

    ocfg = ObjectiveConfig(sigma=cfg.sigma, eps=cfg.eps, slices=cfg.slices, low_energy=cfg.low_energy)
    if is_toy:  # DSM denoises the toy smoothing noise itself (sigma = toy_smoothing), as the official toy code
        ocfg = toy_objective_config(objective, ocfg, cfg.toy_smoothing)
    optimizer = optimizer_for(cfg)
    prep = None if is_toy else jax.jit(lambda k, x: to_model_space(k, x, logit)[0])
    base_key = jax.random.PRNGKey(cfg.seed + 1)  # batch and noise of step t depend only on (seed, t),

    def batch_at(step):
        rng = np.random.default_rng([cfg.seed, step])  # so a resumed run equals an uninterrupted one
        kp, ks = jax.random.split(jax.random.fold_in(base_key, step))
        if is_toy:
            return jnp.asarray(toy_train_batch(cfg.dataset, objective, cfg.batch_size, rng, cfg.toy_smoothing), jnp.float32), ks
        return prep(kp, train_images(cfg, data["train"], rng)), ks

    # same init for every objective; data-dependent layers (Glow's ActNorm) start from the first batch
    state = init_state(flow, jax.random.PRNGKey(cfg.seed), optimizer, batch_at(0)[0] if flow.has_data_init else None)
    step_fn = make_train_step(flow, objective, ocfg, optimizer, cfg.ema_decay)
    ckpt = os.path.join(out, "checkpoint.msgpack")
    extra = {"train_seconds": 0.0}
    metrics_path = os.path.join(out, "metrics.csv")
    if os.path.exists(ckpt):
        state, extra = load_checkpoint(ckpt, state, extra)
        print(f"[{objective}] resumed from {ckpt} at step {int(state.step)}")
        if os.path.exists(metrics_path):  # rows a stopped run logged after its last checkpoint are logged again below
            with open(metrics_path) as f:
                kept = [r for r in csv.DictReader(f) if int(r["step"]) <= int(state.step)]
            with open(metrics_path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=METRICS_FIELDS)
                w.writeheader()
                w.writerows(kept)
    elif os.path.exists(metrics_path):
        os.remove(metrics_path)
    mesh = make_mesh(cfg.num_devices) if cfg.num_devices > 1 else None

    from tensorboardX import SummaryWriter

    writer = SummaryWriter(os.path.join(out, "tb"))
    start = int(state.step)
    train_seconds = float(extra["train_seconds"])
    seconds_before = train_seconds  # a resumed run's earlier training time: not part of this process's ms/step
    rows = []
    new_file = not os.path.exists(metrics_path)
    mf = open(metrics_path, "a", newline="")
    mw = csv.DictWriter(mf, fieldnames=METRICS_FIELDS)
    if new_file:
        mw.writeheader()
    t_last = time.time()
    bar = tqdm(range(start, cfg.steps), desc=f"{objective:>5}", initial=start, total=cfg.steps, mininterval=2.0)
    for step in bar:
        x, ks = batch_at(step)
        if mesh is not None:
            state, x = shard(mesh, state, x)
        state, loss = step_fn(state, x, ks)
        s = step + 1
        if s == start + 1:  # the first step compiles; keep it out of the timing
            jax.block_until_ready(loss)
            t_last = time.time()
        if s % cfg.log_every == 0 or s == cfg.steps or s == start + 1:
            lv = check_finite(loss, s, objective)
            now = time.time()
            train_seconds += now - t_last
            t_last = now
            row = {"step": s, "loss": lv, "val_nll": "", "seconds": round(train_seconds, 2)}
            if cfg.eval_every and (s % cfg.eval_every == 0) and len(data["val"]):
                row["val_nll"] = evaluate_nll(cfg, flow, eval_params(flow, state), logit, data["val"], jax.random.PRNGKey(1), is_toy)
                writer.add_scalar("val_nll", row["val_nll"], s)
                t_last = time.time()  # evaluation time is not training time
            writer.add_scalar("loss", lv, s)
            mw.writerow(row)
            mf.flush()
            rows.append(row)
            bar.set_postfix(loss=f"{lv:.4f}")
        # same wall-clock: checked at log steps only, where float(loss) has synchronised (dispatch is async)
        out_of_time = cfg.time_budget > 0 and s % cfg.log_every == 0 and train_seconds >= cfg.time_budget
        if s % cfg.ckpt_every == 0 or s == cfg.steps or out_of_time:
            save_checkpoint(ckpt, state, {"train_seconds": train_seconds})
            t_last = time.time()
        if out_of_time:
            break
    bar.close()
    steps_done = int(state.step)
    mf.close()

    params = eval_params(flow, state)  # EMA weights; spectral-norm u, v as training left them, no iteration
    test_key = jax.random.PRNGKey(2024)  # same dequantisation noise for every objective
    nll = evaluate_nll(cfg, flow, params, logit, data["test"], test_key, is_toy)
    writer.add_scalar("test_nll", nll, cfg.steps)
    writer.close()
    with open(metrics_path) as f:
        all_rows = [r for r in csv.DictReader(f)]
    save_curves(os.path.join(out, "loss.png"), [{"step": int(r["step"]), "loss": float(r["loss"])} for r in all_rows], f"{objective}: training objective")

    toy_metrics = {}
    if is_toy:
        save_toy_density(os.path.join(out, "density.png"), flow, params, f"{objective}: test NLL {nll:.3f} nats")
        d = toy_divergences(flow, params, data["eval"])
        toy_metrics = {"kl": round(d["kl"], 4), "fisher": round(d["fisher"], 4)}
    else:
        xs = sample(flow, params, jax.random.PRNGKey(7), cfg.n_samples)
        save_image_grid(os.path.join(out, "samples.png"), to_pixels(xs, logit), f"{objective}: exact samples g^-1(z)")
        if cfg.inpaint_steps > 0:
            x8 = data["test"][:16]
            y_obs, _ = to_model_space(jax.random.PRNGKey(3), x8, logit)
            h = y_obs.shape[1]
            mask = jnp.ones_like(y_obs).at[:, h // 2 :].set(0.0)  # bottom half missing
            y_fill, acc = jax.jit(lambda y, m, k: mala_inpaint(flow, params, y, m, k, cfg.inpaint_steps, cfg.inpaint_step_size))(
                y_obs, mask, jax.random.PRNGKey(5))
            panel = jnp.concatenate([to_pixels(y_obs, logit), to_pixels(y_obs * mask, logit) * mask, to_pixels(y_fill, logit)])
            save_image_grid(os.path.join(out, "inpainting.png"), panel,
                            f"{objective}: data / observed (bottom half missing) / MALA fill, accept {float(acc):.2f}", cols=len(x8))
    steps_run = steps_done - start
    result = {"objective": objective, "steps": steps_done, "train_seconds": round(train_seconds, 1),
              "ms_per_step": round(1000 * (train_seconds - seconds_before) / (steps_run - 1), 2) if steps_run > 1 else None,
              "test_nll": round(nll, 4), "final_loss": rows[-1]["loss"] if rows else None, **toy_metrics}
    with open(done_path, "w") as f:
        json.dump(result, f, indent=1)
    return result


def main(argv=None):
    cfg = parse_args(argv)
    if cfg.resume:
        run_dir = cfg.resume
    else:
        run_dir = os.path.join(cfg.out_dir, f"{cfg.config}-{time.strftime('%Y%m%d-%H%M%S')}")
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(dataclasses.asdict(cfg), f, indent=1)
    flow, _, data, is_toy = build(cfg)
    unit = "nats" if is_toy else "bits/dim"
    splits = "" if is_toy else f"train {len(data['train'])} / val {len(data['val'])} / "
    print(f"run dir: {run_dir}\ndataset {cfg.dataset}: input {flow.input_shape} (D={flow.dim}); "
          f"{splits}test {len(data['test'])}; "
          f"devices: {jax.devices()[: max(cfg.num_devices, 1)]}")
    results = [train_one(cfg, o, data, is_toy, run_dir) for o in objective_list(cfg)]

    extra = " KL(p\\|\\|q) | Fisher div. |" if is_toy else ""
    lines = [f"| objective | steps | train s | ms/step | test NLL ({unit}) |{extra}", "| --- | --- | --- | --- | --- |" + " --- |" * (2 * is_toy)]
    for r in results:
        cells = f" {r['kl']:.4f} | {r['fisher']:.4f} |" if is_toy else ""
        lines.append(f"| {r['objective']} | {r['steps']} | {r['train_seconds']} | {r['ms_per_step']} | {r['test_nll']:.4f} |{cells}")
    table = "\n".join(lines)
    with open(os.path.join(run_dir, "results.md"), "w") as f:
        f.write(f"{cfg.dataset} {flow.input_shape}, arch {cfg.arch}, config {cfg.config}\n\n{table}\n")
    with open(os.path.join(run_dir, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(results[0].keys()))
        w.writeheader()
        w.writerows(results)
    print(f"\nEBFlow on {cfg.dataset} {flow.input_shape} ({cfg.arch} flow), test split, EMA weights\n{table}\nwritten to {run_dir}")
    return results


if __name__ == "__main__":
    main()

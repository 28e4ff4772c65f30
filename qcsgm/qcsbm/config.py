"""The typed run configuration. Named configs in configs/ are override dicts on these defaults."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Literal


@dataclass
class Config:
    # ---- 2-D toys: USBM vs QCSBM (exact, Hutchinson) vs CSBM, same seed and budget
    toys: tuple[str, ...] = ("checkerboard", "gaussian_8", "spiral_2")
    """2-D datasets: checkerboard, gaussian_8, spiral_2 (empty: skip the toy comparison)."""
    methods: tuple[str, ...] = ("usbm", "qcsbm_exact", "qcsbm_hutch", "csbm")
    """score models to compare: usbm, qcsbm_exact, qcsbm_hutch, csbm."""
    toy_steps: int = 1000
    """training iterations per toy model (paper: 4000 checkerboard, 2000 others)."""
    toy_batch: int = 1000
    """batch size (paper: 5000)."""
    toy_lr: float = 7.5e-4
    toy_sigma_min: float = 0.1
    toy_sigma_max: float = 3.0
    lam: float = 0.1
    """lambda, weight of the asymmetry regulariser on the toys."""
    n_slices: int = 1
    """K, Hutchinson slices per sample."""
    grad_clip: float = 1.0
    # ---- evaluation (toys)
    eval_samples: int = 2000
    """real and generated points for precision/recall, Asym and score error."""
    n_levels: int = 10
    """noise levels for Asym / NAsym / score error (paper: 100)."""
    nll_samples: int = 1000
    nearest_k: int = 3
    pc_steps: int = 1000
    """PC sampler steps for the 'full' sampling budget."""
    few_steps: int = 10
    """the reduced sampler budget (PC steps and Euler-ODE steps)."""
    nfe_sweep: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
    """Euler probability-flow-ODE steps tried to find the NFE that reaches quality_target."""
    quality_target: float = 0.8
    """(precision + recall) / 2 that counts as 'reached' in the NFE sweep."""
    # ---- images: USBM vs QCSBM (Hutchinson) on a small NCSN++-style U-Net
    image_dataset: str = "digits"
    """digits, fashion_mnist, cifar10, cifar100, svhn ('' skips the image run)."""
    image_root: str = ""
    """folder with the files of cifar10 / cifar100 / svhn / a non-default fashion_mnist."""
    image_size: int = 0
    """shrink the images to image_size x image_size by block means (0: native size; fashion_mnist 14 = 2x2 means)."""
    image_methods: tuple[str, ...] = ("usbm", "qcsbm_hutch")
    """usbm, qcsbm_hutch, qcsbm_exact (D jvps: small images only), csbm (energy U-Net, s = -grad E)."""
    image_steps: int = 1500
    image_batch: int = 64
    image_lr: float = 2e-4
    image_warmup: int = 100
    image_ema: float = 0.999
    image_lam: float = 1e-3
    """lambda on images (paper fine-tunes NCSN++ with 1e-4)."""
    image_n_slices: int = 1
    image_sigma_min: float = 0.01
    image_sigma_max: float = 10.0
    """VE sigma_max (paper: 50 at 32x32; ~ the largest pairwise distance of the data)."""
    nf: int = 32
    ch_mult: tuple[int, ...] = (1, 2)
    num_res_blocks: int = 1
    attn_resolutions: tuple[int, ...] = (4,)
    image_eval_samples: int = 256
    image_nll_samples: int = 128
    image_pc_steps: int = 200
    image_nll_dtype: Literal["auto", "float32", "float64"] = "auto"
    """float type of the image ODE NLL: float64 (jax x64 mode for the NLL only, parameters cast), float32, or auto:
    float64 for csbm, whose float32 Hutchinson NLL moves by up to ~10 nats per image with rounding (README), float32
    for the others. float64 costs ~2.4x on CSBM's host loop and has not removed the host / jit gap on every
    checkpoint (README, "CSBM's NLL in float64")."""
    # ---- Section 6 autoencoder demo
    ae_steps: int = 1000
    """untied autoencoder trained with lambda=0 vs lambda=ae_lam on a ring toy (0 skips)."""
    ae_lam: float = 1.0
    # ---- run
    seed: int = 0
    out_dir: str = "runs"
    resume: str = ""
    """a run folder runs/<config>-<time> to continue: finished parts are kept, others resume from checkpoints."""
    ckpt_every: int = 250
    log_every: int = 25
    n_devices: int = 1
    """data-parallel devices (0 = all visible); the batch is sharded over a 'data' mesh axis."""
    config: str = "quick"
    """named config (configs/): quick, paper-2d, paper-cifar10, paper-cifar100, paper-svhn."""


def replace(cfg: Config, **overrides) -> Config:
    names = {f.name for f in dataclasses.fields(Config)}
    bad = set(overrides) - names
    if bad:
        raise ValueError(f"unknown config fields {sorted(bad)}")
    return dataclasses.replace(cfg, **overrides)


def load_run_config(run_dir: str) -> Config:
    """The Config a run folder's config.json holds (lists back to tuples; unknown keys ignored)."""
    with open(os.path.join(run_dir, "config.json")) as f:
        raw = json.load(f)
    names = {f.name for f in dataclasses.fields(Config)}
    return replace(Config(), **{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in names})

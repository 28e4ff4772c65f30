"""Data: the paper's 2-D toys (with their oracle scores of the perturbed densities) and image sets.

Toys follow the official 2-D code: checkerboard (8 squares of side 3 in [-6, 6]^2), 8 Gaussians
(centres 8/sqrt2 from the origin, std 1/sqrt2) and a 2-arm spiral (scale 2.3/3).
Images: sklearn digits (8x8, ships with scikit-learn), Fashion-MNIST IDX files (Debian package
`dataset-fashion-mnist`), and CIFAR-10 / CIFAR-100 / SVHN loaders for users who have them on disk.
All images are scaled to [0, 1] and returned NHWC float32.
"""
from __future__ import annotations

import functools
import gzip
import os
import pickle
import struct

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp, ndtr

TOYS = ("checkerboard", "gaussian_8", "spiral_2")
IMAGE_SETS = ("digits", "fashion_mnist", "cifar10", "cifar100", "svhn")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

# ----------------------------------------------------------------------------- 2-D toys

_SQ2 = 1.0 / np.sqrt(2.0)
_G8_CENTERS = 8.0 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (_SQ2, _SQ2), (-_SQ2, _SQ2),
                              (_SQ2, -_SQ2), (-_SQ2, -_SQ2)], dtype=np.float64) * _SQ2
_G8_STD = _SQ2
# Checkerboard squares, lower-left corners (side 3): x1 in [-6, 6), the occupied rows alternate.
_CB_SIDE = 3.0
_CB_CORNERS = np.array([(i * 3.0, j * 3.0) for i in range(-2, 2) for j in range(-2, 2)
                        if (i + j) % 2 == 0], dtype=np.float64)


def sample_toy(name: str, n: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """n samples (float32, shape (n, 2)) of a 2-D toy density."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if name == "checkerboard":
        corners = _CB_CORNERS[rng.integers(0, len(_CB_CORNERS), n)]
        x = corners + _CB_SIDE * rng.random((n, 2))
    elif name == "gaussian_8":
        x = _G8_CENTERS[rng.integers(0, 8, n)] + _G8_STD * rng.standard_normal((n, 2))
    elif name == "spiral_2":
        h = (n + 1) // 2
        r = np.sqrt(rng.random(h)) * 540 * (2 * np.pi) / 360
        d1 = np.stack([-np.cos(r) * r + rng.random(h) * 0.5, np.sin(r) * r + rng.random(h) * 0.5], 1)
        x = np.concatenate([d1, -d1], 0)[:n] * (2.3 / 3.0)
        x = x[rng.permutation(n)]
    else:
        raise ValueError(f"unknown toy dataset {name!r}; choose one of {TOYS}")
    return x.astype(np.float32)


def oracle_score_fn(name: str, n_reference: int = 20000, seed: int = 12345):
    """The true score grad_x log p_sigma(x) of the toy density convolved with N(0, sigma^2 I).

    Exact for checkerboard (products of normal CDF differences) and 8 Gaussians (a Gaussian
    mixture); for the spiral, which has no closed form, a Monte-Carlo mixture of N(y_m, sigma^2 I)
    over n_reference clean samples y_m. Returns f(x (B,2), sigma (B,)) -> (B,2).
    """
    if name == "gaussian_8":
        mu = jnp.asarray(_G8_CENTERS, jnp.float32)

        def logp(x, sigma):
            var = _G8_STD**2 + sigma**2
            d2 = jnp.sum((x[None] - mu) ** 2, -1)
            return logsumexp(-d2 / (2 * var))
    elif name == "checkerboard":
        lo = jnp.asarray(_CB_CORNERS, jnp.float32)

        def logp(x, sigma):
            # P(x - sigma z in square) = prod_d [Phi((x_d - a_d)/sigma) - Phi((x_d - b_d)/sigma)]
            mass = ndtr((x[None] - lo) / sigma) - ndtr((x[None] - lo - _CB_SIDE) / sigma)
            return jnp.log(jnp.sum(jnp.prod(mass, -1)) + 1e-30)
    elif name == "spiral_2":
        ref = jnp.asarray(sample_toy("spiral_2", n_reference, seed))

        def logp(x, sigma):
            return logsumexp(-jnp.sum((x[None] - ref) ** 2, -1) / (2 * sigma**2))
    else:
        raise ValueError(f"unknown toy dataset {name!r}; choose one of {TOYS}")
    per_point = jax.vmap(jax.grad(logp))
    if name != "spiral_2":
        return jax.jit(per_point)
    return jax.jit(functools.partial(_in_chunks, per_point, 100))


def _in_chunks(f, chunk, x, sigma):
    """f(x, sigma) over blocks of `chunk` points (lax.map), the same values as one call: the spiral oracle
    on 5000 points otherwise builds 5000 x 20000 intermediates per level in one go (the run that did so spent
    half its CPU time in the kernel); blocks of 100 points were 3.3x faster on 2 idle cores (0.73 s vs 2.39 s per level at 5000 points, a
    scratch timing; bit-identical output there)."""
    n = x.shape[0]
    pad = (-n) % chunk
    xp = jnp.pad(x, ((0, pad), (0, 0)))
    sp = jnp.pad(jnp.broadcast_to(sigma, (n,)), (0, pad), constant_values=1.0)
    out = jax.lax.map(lambda xs: f(*xs), (xp.reshape(-1, chunk, x.shape[1]), sp.reshape(-1, chunk)))
    return out.reshape(-1, x.shape[1])[:n]


# ----------------------------------------------------------------------------- images


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (MNIST / Fashion-MNIST format), gzipped or not."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        zero, dtype_code, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype_code != 0x08:
            raise ValueError(f"{path} is not an unsigned-byte IDX file")
        shape = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(shape)


def downsample(x: np.ndarray, size: int, bins: int) -> np.ndarray:
    """NHWC images in [0, 1] shrunk to size x size by the mean of each f x f block (f = H / size), rounded
    back to the set's `bins` intensity levels so the data stays quantised (dequantisation, bits/dim)."""
    n, h, w, c = x.shape
    if size < 1 or h % size or w % size or h // size != w // size:
        raise ValueError(f"image size {size} must divide the native {h}x{w} by a whole factor")
    f = h // size
    levels = np.round(x.astype(np.float64) * (bins - 1))  # exact integers, so ties round the same everywhere
    pooled = levels.reshape(n, size, f, size, f, c).sum(axis=(2, 4)) / (f * f)
    return (np.round(pooled) / (bins - 1)).astype(np.float32)


def load_images(name: str, split: str = "train", root: str | None = None, size: int = 0) -> np.ndarray:
    """Images in [0, 1], NHWC float32. `root` is the folder holding the files of sets not shipped here;
    `size` > 0 shrinks them to size x size by block means (`downsample`), e.g. 14 for 14x14 Fashion-MNIST."""
    x = _load_native(name, split, root)
    return downsample(x, size, n_bins(name)) if size else x


def _load_native(name: str, split: str, root: str | None) -> np.ndarray:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if name == "digits":
        from sklearn.datasets import load_digits

        x = load_digits().images.astype(np.float32) / 16.0  # (1797, 8, 8)
        rng = np.random.default_rng(0)
        idx = rng.permutation(len(x))
        idx = idx[:1500] if split == "train" else idx[1500:]
        return x[idx, :, :, None]
    if name == "fashion_mnist":
        root = root or FASHION_MNIST_DIR
        prefix = "train" if split == "train" else "t10k"
        x = read_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"))
        return (x.astype(np.float32) / 255.0)[..., None]
    if name in ("cifar10", "cifar100"):
        if root is None:
            raise ValueError(f"{name} is not shipped here: pass --image-root to the extracted python-version folder")
        if name == "cifar10":
            files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        else:
            files = ["train"] if split == "train" else ["test"]
        xs = []
        for fn in files:
            p = os.path.join(root, fn)
            if not os.path.exists(p):
                raise FileNotFoundError(f"{name} file not found: {p}")
            with open(p, "rb") as f:
                xs.append(pickle.load(f, encoding="bytes")[b"data"])
        x = np.concatenate(xs).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x.astype(np.float32) / 255.0
    if name == "svhn":
        if root is None:
            raise ValueError("svhn is not shipped here: pass --image-root to the folder with train_32x32.mat")
        from scipy.io import loadmat

        p = os.path.join(root, f"{split}_32x32.mat")
        if not os.path.exists(p):
            raise FileNotFoundError(f"svhn file not found: {p}")
        return loadmat(p)["X"].transpose(3, 0, 1, 2).astype(np.float32) / 255.0
    raise ValueError(f"unknown image dataset {name!r}; choose one of {IMAGE_SETS}")


def sample_rings(n: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Two concentric rings (radii 1.5 and 3, width 0.1): the toy of the Section 6 autoencoder demo."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    theta = rng.random(n) * 2 * np.pi
    r = np.where(rng.random(n) < 0.5, 1.5, 3.0) + 0.1 * rng.standard_normal(n)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], 1).astype(np.float32)


def n_bins(name: str) -> int:
    """Number of intensity levels of an image set (for dequantisation and bits/dim)."""
    return 17 if name == "digits" else 256


def dequantize(x: np.ndarray, bins: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform dequantisation of [0, 1] images with `bins` levels: (k + u) / bins, u ~ U[0, 1)."""
    k = np.round(x * (bins - 1))
    return ((k + rng.random(x.shape)) / bins).astype(np.float32)


# ----------------------------------------------------------------------------- image reference scores


def max_pairwise_distance(x: np.ndarray) -> float:
    """Largest Euclidean distance between two images of x: Song & Ermon's (2020) rule sets sigma_max near it."""
    f = x.reshape(len(x), -1).astype(np.float64)
    sq = np.sum(f**2, 1)
    return float(np.sqrt(max(0.0, np.max(sq[:, None] + sq[None] - 2 * f @ f.T))))


def image_reference_scores(x_train: np.ndarray, bins: int):
    """Two reference scores of the perturbed image density p_sigma, each f(x (B, ...), sigma (B,)) -> (B, ...):

    gaussian: N(mu, C) fitted to the dequantised training images, s = -(C + sigma^2 I)^-1 (x - mu), the best
      linear denoiser; a trained network should beat it at every sigma, and it is near-exact at large sigma.
    mixture: the training set itself, each image a Gaussian at its dequantisation cell's centre (k + 1/2) / bins
      with the cell's variance 1 / (12 bins^2) added to sigma^2: the exact score of the (smoothed) empirical
      distribution. Samples drawn with it reproduce training images, which checks a sampler end to end."""
    flat = x_train.reshape(len(x_train), -1)
    centres = ((np.round(flat * (bins - 1)) + 0.5) / bins).astype(np.float32)
    cell_var = 1.0 / (12.0 * bins**2)
    mu = centres.mean(0)
    ev, vec = np.linalg.eigh(np.cov(centres.T) + cell_var * np.eye(flat.shape[1]))
    mu, ev, vec, cj = (jnp.asarray(a, jnp.float32) for a in (mu, ev, vec, centres))

    def gaussian(x, sigma):
        y = (x.reshape(len(x), -1) - mu) @ vec
        return (-(y / (ev[None] + sigma[:, None] ** 2)) @ vec.T).reshape(x.shape)

    def mixture(x, sigma):
        var = sigma[:, None] ** 2 + cell_var
        xf = x.reshape(len(x), -1)
        d2 = jnp.sum(xf**2, 1)[:, None] + jnp.sum(cj**2, 1)[None] - 2 * xf @ cj.T
        w = jax.nn.softmax(-d2 / (2 * var), -1)
        return ((w @ cj - xf) / var).reshape(x.shape)

    return gaussian, mixture

"""Data: IDX reader (Fashion-MNIST / MNIST), sklearn digits, CIFAR-10 from disk, 2-D toys.

Image sets are returned as uint8 arrays of shape (N, H, W, C) with 256 levels, so the
dequantisation + logit preprocessing (``preprocess.py``) and bits/dim are the same for all.
Nothing here downloads anything.
"""
from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
IMAGE_DATASETS = ("fashion-mnist", "mnist", "digits", "cifar10")
TOY_DATASETS = ("sine", "swirl", "checkerboard", "multimodal10")
SWIRL_SCALE = 2.5 / 3.0
MM10_RADIUS, MM10_STD = 3.0, 0.3

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (MNIST format), gzipped or not."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4]!r})")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    shape = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {data.size} values")
    return data.reshape(shape)


def _find(root: str, stem: str) -> str:
    for name in (stem + ".gz", stem):
        p = os.path.join(root, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(
        f"{stem}[.gz] not found in {root!r}. For Fashion-MNIST install the Debian package "
        f"'dataset-fashion-mnist' (files in {FASHION_MNIST_DIR}) or pass --data-dir to a folder with the IDX files."
    )


def load_idx_images(root: str, split: str) -> np.ndarray:
    """MNIST-format images (train-images-idx3-ubyte / t10k-images-idx3-ubyte) -> (N, 28, 28, 1) uint8."""
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"dataset folder {root!r} does not exist. For Fashion-MNIST install the Debian package "
            f"'dataset-fashion-mnist' or pass --data-dir to a folder with the IDX files."
        )
    stem = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}[split]
    return read_idx(_find(root, stem))[..., None].astype(np.uint8)


def load_digits_uint8() -> np.ndarray:
    """sklearn's 8x8 digits (values 0..16) rescaled to 0..255 integers, (1797, 8, 8, 1)."""
    from sklearn.datasets import load_digits

    x = load_digits().images  # float 0..16
    return np.round(x * (255.0 / 16.0)).astype(np.uint8)[..., None]


def load_cifar10(root: str, split: str) -> np.ndarray:
    """CIFAR-10 python batches (cifar-10-batches-py) -> (N, 32, 32, 3) uint8. For users who have it on disk."""
    folder = os.path.join(root, "cifar-10-batches-py") if not root.endswith("cifar-10-batches-py") else root
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"CIFAR-10 not found: {folder!r} (expected the python version 'cifar-10-batches-py'; nothing is downloaded)")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    xs = []
    for n in names:
        with open(os.path.join(folder, n), "rb") as f:
            d = pickle.load(f, encoding="bytes")
        xs.append(np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.concatenate(xs)


def downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Average-pool uint8 images by ``factor`` and round back to 256 integer levels."""
    if factor == 1:
        return x
    n, h, w, c = x.shape
    if h % factor or w % factor:
        raise ValueError(f"cannot downsample {h}x{w} images by {factor}")
    pooled = x.reshape(n, h // factor, factor, w // factor, factor, c).astype(np.float64).mean(axis=(2, 4))
    return np.clip(np.round(pooled), 0, 255).astype(np.uint8)


def load_image_dataset(name: str, data_dir: str | None = None, image_size: int | None = None,
                       val_size: int = 0, seed: int = 0):
    """Return (train, val, test) uint8 arrays (N, H, W, C). The test split is never used for training.

    fashion-mnist / mnist: the official 60k/10k split; ``val_size`` images of train are held out.
    digits: 1797 images, shuffled once with ``seed`` and split 1257 train / 180 val / 360 test.
    """
    if name not in IMAGE_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {IMAGE_DATASETS + TOY_DATASETS}")
    if name in ("fashion-mnist", "mnist"):
        root = data_dir or (FASHION_MNIST_DIR if name == "fashion-mnist" else "./data/mnist")
        train, test = load_idx_images(root, "train"), load_idx_images(root, "test")
    elif name == "cifar10":
        root = data_dir or "./data"
        train, test = load_cifar10(root, "train"), load_cifar10(root, "test")
    else:
        x = load_digits_uint8()
        perm = np.random.default_rng(seed).permutation(len(x))
        x = x[perm]
        test, train = x[:360], x[360:]
        val_size = val_size or 180
    if val_size >= len(train):
        raise ValueError(f"val_size={val_size} leaves no training images ({name} has {len(train)} train images)")
    if val_size:
        train, val = train[:-val_size], train[-val_size:]
    else:
        val = train[:0]
    if image_size and image_size != train.shape[1]:
        if train.shape[1] % image_size:
            raise ValueError(f"image_size {image_size} must divide the native size {train.shape[1]}")
        f = train.shape[1] // image_size
        train, val, test = downsample(train, f), downsample(val, f), downsample(test, f)
    return train, val, test


# --------------------------------------------------------------------------- 2-D toys
def sample_toy(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """The 2-D toy densities (float64, (n, 2)), before the N(0, 0.375^2) smoothing.

    sine, swirl and checkerboard follow the official toy code (toy_examples/ebflow/datasets/*.py,
    the three densities of the paper's Table 1); their exact smoothed densities are in
    ``toy_density.py``. multimodal10 is this repo's 2-D ring of 10 Gaussians (the official
    'multimodal10' is a 10-D set for another figure).
    """
    if name == "sine":  # x1 = 4u, u ~ U(-2, 2); x2 = 4 (sin(3u) + 0.25 n)
        u = rng.uniform(-2, 2, n)
        return 4.0 * np.stack([u, np.sin(3.0 * u) + 0.25 * rng.normal(size=n)], 1)
    if name == "swirl":  # t = 3 pi sqrt(U); (t cos t, -t sin t) + a uniform 0.5 x 0.5 jitter, scaled by 2.5/3
        t = np.sqrt(rng.uniform(0, 1, n)) * 3.0 * np.pi
        a, b = 0.5 * rng.uniform(0, 1, n), 0.5 * rng.uniform(0, 1, n)
        return SWIRL_SCALE * np.stack([t * np.cos(t) + 1.0 - a, -t * np.sin(t) + 2.0 - b], 1)
    if name == "checkerboard":  # 8 squares of side 3 on [-6, 6]^2, alternate ones filled
        x1 = rng.uniform(-2, 2, n)
        x2 = rng.uniform(0, 1, n) - 2.0 * rng.integers(0, 2, n) + np.floor(x1) % 2
        return 3.0 * np.stack([x1, x2], 1)
    if name == "multimodal10":
        angles = 2 * np.pi * rng.integers(0, 10, n) / 10
        centers = MM10_RADIUS * np.stack([np.cos(angles), np.sin(angles)], 1)
        return centers + MM10_STD * rng.normal(size=(n, 2))
    raise ValueError(f"unknown toy dataset {name!r}; choose one of {TOY_DATASETS}")


def toy_batch(name: str, n: int, rng: np.random.Generator, smoothing: float = 0.375) -> np.ndarray:
    """Toy samples smoothed by N(0, smoothing^2), as in the paper's toy experiments."""
    return sample_toy(name, n, rng) + smoothing * rng.normal(size=(n, 2))


def cifar_augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The official CIFAR-10 train transform (datasets/cifar10.py) on a uint8 batch (N, H, W, C): torchvision's
    RandomHorizontalFlip, Pad(ceil(0.04 H), 'edge'), RandomAffine(translate=(0.04, 0.04)), CenterCrop(H),
    RandomHorizontalFlip. The affine moves the padded image (size S) by whole pixels t = round(U(-0.04 S, 0.04 S))
    and the edge padding fills what moves in: on 32x32 images (S = 36) t is -1, 0 or +1 per axis, P(0) = 1 / 2.88,
    edge pixels repeated. t is symmetric, so flip-shift-flip is one shift and one fair flip."""
    n, h, w, _ = x.shape
    pad = int(np.ceil(0.04 * h))
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    tx = np.round(rng.uniform(-0.04 * (w + 2 * pad), 0.04 * (w + 2 * pad), n)).astype(int)  # |t| <= pad up to 150 px
    ty = np.round(rng.uniform(-0.04 * (h + 2 * pad), 0.04 * (h + 2 * pad), n)).astype(int)
    rows = pad - ty[:, None] + np.arange(h)  # out[i, j] = padded[i + pad - ty, j + pad - tx]: content moves by (ty, tx)
    cols = pad - tx[:, None] + np.arange(w)
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    return out

"""Data sets: the paper's 2-D inter-twinning moons, sklearn digits, Fashion-MNIST, CIFAR-10/100.

Every loader returns float32 arrays (x_train, y_train, x_test, y_test); images are NHWC in [0, 1]
(the VE SDE of score_sde works on [0, 1] data). Nothing is downloaded: Fashion-MNIST is read from
Debian's `dataset-fashion-mnist` IDX files, CIFAR from the python pickles a user already has.
"""
from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DATASETS = ("moons", "digits", "fashion_mnist", "mnist", "cifar10", "cifar100")


def moons(n: int = 10000, scale: float = 20.0, n_test: int = 2000):
    """The paper's toy set: make_moons(10000, noise=0, random_state=1), centred, times 20.

    Class 0 is the upper crescent, class 1 the lower one. The test split is a second noiseless
    draw (other points on the same two curves), centred with the training mean.
    """
    from sklearn.datasets import make_moons

    x, y = make_moons(n, noise=0.0, random_state=1)
    xt, yt = make_moons(n_test, noise=0.0, random_state=2)
    mean = x.mean(0)
    f = lambda a: ((a - mean) * scale).astype(np.float32)
    return f(x), y.astype(np.int32), f(xt), yt.astype(np.int32)


def moons_curve_draw(n: int, seed: int, n_train: int = 10000, scale: float = 20.0):
    """n fresh points of the continuous moons (held out from `moons()`'s training set).

    make_moons puts its points on a linspace of the angle t in [0, pi], so its noiseless "test
    split" is a second grid on the same curves. Here t ~ U(0, pi) is drawn at random instead (class
    0: (cos t, sin t), class 1: (1 - cos t, 1/2 - sin t), as in make_moons), n // 2 points of class 0
    and the rest of class 1, centred with the training mean and scaled like `moons()`. The points
    lie on the training curves, between training points (their spacing there is pi * scale / (n_train / 2)).
    """
    from sklearn.datasets import make_moons

    mean = make_moons(n_train, noise=0.0, random_state=1)[0].mean(0)
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0, t1 = rng.uniform(0.0, np.pi, n0), rng.uniform(0.0, np.pi, n - n0)
    x = np.concatenate([np.stack([np.cos(t0), np.sin(t0)], 1), np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1)])
    y = np.concatenate([np.zeros(n0, np.int32), np.ones(n - n0, np.int32)])
    return ((x - mean) * scale).astype(np.float32), y


def digits(test_fraction: float = 0.2, seed: int = 0):
    """sklearn's 8x8 digits (1797 images, 10 classes), scaled to [0, 1], NHWC."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int32)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    te, tr = perm[:n_test], perm[n_test:]
    return x[tr], y[tr], x[te], y[te]


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (MNIST / Fashion-MNIST format), gzipped or not."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path} is too short to be an IDX file")
    zero, dtype_code, ndim = data[0] << 8 | data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {data[:4].hex()})")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {arr.size} values")
    return arr.reshape(shape)


def idx_dataset(root: str, limit_train: int | None = None, limit_test: int | None = None):
    """Fashion-MNIST / MNIST from a folder of the four standard IDX files."""
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"data directory {root!r} does not exist (Fashion-MNIST: apt-get install dataset-fashion-mnist)"
        )

    def find(stem):
        for name in (stem + ".gz", stem):
            p = os.path.join(root, name)
            if os.path.exists(p):
                return p
        raise FileNotFoundError(f"{stem}[.gz] not found in {root}")

    xs, ys = [], []
    for split, limit in (("train", limit_train), ("t10k", limit_test)):
        x = read_idx(find(f"{split}-images-idx3-ubyte"))[:limit]
        y = read_idx(find(f"{split}-labels-idx1-ubyte"))[:limit]
        xs.append((x.astype(np.float32) / 255.0)[..., None])
        ys.append(y.astype(np.int32))
    return xs[0], ys[0], xs[1], ys[1]


def cifar(root: str, num_classes: int = 10):
    """CIFAR-10/100 from the python-pickle release (cifar-10-batches-py / cifar-100-python)."""
    if num_classes == 10:
        folder, train_files, test_files, key = "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"
    elif num_classes == 100:
        folder, train_files, test_files, key = "cifar-100-python", ["train"], ["test"], b"fine_labels"
    else:
        raise ValueError(f"CIFAR has 10 or 100 classes, not {num_classes}")
    base = os.path.join(root, folder) if os.path.isdir(os.path.join(root, folder)) else root

    def load(files):
        xs, ys = [], []
        for f in files:
            p = os.path.join(base, f)
            if not os.path.exists(p):
                raise FileNotFoundError(f"CIFAR file not found: {p} (this project never downloads data)")
            with open(p, "rb") as fh:
                d = pickle.load(fh, encoding="bytes")
            xs.append(d[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            ys.append(np.asarray(d[key]))
        return (np.concatenate(xs).astype(np.float32) / 255.0), np.concatenate(ys).astype(np.int32)

    x, y = load(train_files)
    xt, yt = load(test_files)
    return x, y, xt, yt


def load(name: str, data_dir: str = "", limit_train: int | None = None, limit_test: int | None = None):
    """Dispatch by name; raises a clear error for unknown names or missing files."""
    if name == "moons":
        out = moons()
    elif name == "digits":
        out = digits()
    elif name in ("fashion_mnist", "mnist"):
        out = idx_dataset(data_dir or FASHION_MNIST_DIR, limit_train, limit_test)
    elif name in ("cifar10", "cifar100"):
        if not data_dir:
            raise FileNotFoundError(f"{name} needs --data-dir pointing at the extracted python pickles")
        out = cifar(data_dir, 10 if name == "cifar10" else 100)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    x, y, xt, yt = out
    if name not in ("fashion_mnist", "mnist"):
        x, y, xt, yt = x[:limit_train], y[:limit_train], xt[:limit_test], yt[:limit_test]
    return x, y, xt, yt

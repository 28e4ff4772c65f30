import gzip
import os
import struct

import numpy as np
import pytest

from ebflow import data as D


def _write_idx(path, arr):
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_idx_reader_roundtrip_and_mnist_layout(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", imgs)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs[:2])
    np.testing.assert_array_equal(D.read_idx(str(tmp_path / "train-images-idx3-ubyte.gz")), imgs)
    train, val, test = D.load_image_dataset("mnist", str(tmp_path), image_size=14, val_size=1)
    assert train.shape == (4, 14, 14, 1) and val.shape == (1, 14, 14, 1) and test.shape == (2, 14, 14, 1)
    assert train.dtype == np.uint8


def test_idx_reader_rejects_non_idx(tmp_path):
    p = tmp_path / "junk"
    p.write_bytes(b"\x12\x34\x56\x78hello")
    with pytest.raises(ValueError, match="not an IDX file"):
        D.read_idx(str(p))


def test_missing_dataset_path_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        D.load_image_dataset("fashion-mnist", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        D.load_image_dataset("fashion-mnist", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found"):
        D.load_image_dataset("cifar10", str(tmp_path))


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        D.load_image_dataset("imagenet")
    with pytest.raises(ValueError, match="unknown toy dataset"):
        D.sample_toy("spiral", 4, np.random.default_rng(0))


@pytest.mark.skipif(not os.path.isdir(D.FASHION_MNIST_DIR), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package():
    train, val, test = D.load_image_dataset("fashion-mnist", image_size=14, val_size=10000)
    assert train.shape == (50000, 14, 14, 1) and val.shape == (10000, 14, 14, 1) and test.shape == (10000, 14, 14, 1)
    assert 40 < train.mean() < 100  # real clothing images, not noise or zeros


def test_digits_split_is_disjoint_and_rescaled():
    train, val, test = D.load_image_dataset("digits", image_size=0, val_size=180)
    assert (len(train), len(val), len(test)) == (1257, 180, 360)
    assert train.max() == 255 and train.dtype == np.uint8
    flat = lambda a: {x.tobytes() for x in a}
    assert len(flat(test) & flat(train)) < 10  # a few exact duplicate digits exist in the data set itself


@pytest.mark.parametrize("name", D.TOY_DATASETS)
def test_toys(name):
    x = D.toy_batch(name, 1000, np.random.default_rng(0))
    assert x.shape == (1000, 2) and np.all(np.isfinite(x)) and np.abs(x).max() < 12


def test_cifar10_loader_on_a_stand_in(tmp_path):
    """Python-pickle batches as distributed (rows of 3072 = R plane, G plane, B plane) -> (N, 32, 32, 3)."""
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name, n in [(f"data_batch_{i}", 3) for i in range(1, 6)] + [("test_batch", 2)]:
        batches[name] = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": batches[name], b"labels": [0] * n}, f)
    train, val, test = D.load_image_dataset("cifar10", str(tmp_path), val_size=0)
    assert train.shape == (15, 32, 32, 3) and test.shape == (2, 32, 32, 3) and val.shape[0] == 0
    assert train.dtype == np.uint8
    row = batches["data_batch_1"][1]
    for r, c, ch in [(0, 0, 0), (5, 7, 1), (31, 30, 2)]:
        assert train[1, r, c, ch] == row[ch * 1024 + r * 32 + c]
    np.testing.assert_array_equal(test[0].transpose(2, 0, 1).reshape(-1), batches["test_batch"][0])
    assert D.load_cifar10(str(folder), "test").shape == (2, 32, 32, 3)  # the batches folder itself also works


def _flips_and_shifts(img):
    """The 18 images the official CIFAR-10 transform can make of ``img`` (H, W, C) at 32x32, written without padding:
    out[i, j] = img[clip(i - dy), clip(j - dx)] for dy, dx in {-1, 0, 1}, each also mirrored; keyed (flip, dy, dx)."""
    h, w = img.shape[:2]
    out = {}
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            moved = img[np.clip(np.arange(h) - dy, 0, h - 1)][:, np.clip(np.arange(w) - dx, 0, w - 1)]
            out[(False, dy, dx)], out[(True, dy, dx)] = moved, moved[:, ::-1]
    return out


def test_cifar_augment_is_the_official_flip_and_one_pixel_shift():
    """Every augmented image is its source moved by at most one pixel per axis (edges repeated), mirrored or not;
    flips are fair and a zero shift has torchvision's probability 1 / (2 * 0.04 * 36) = 0.347 per axis (36: padded size)."""
    x = np.random.default_rng(0).integers(0, 256, (4000, 32, 32, 3)).astype(np.uint8)
    y = D.cifar_augment(x, np.random.default_rng(1))
    assert y.shape == x.shape and y.dtype == np.uint8
    kinds = []
    for src, out in zip(x, y):
        (kind,) = [k for k, c in _flips_and_shifts(src).items() if np.array_equal(c, out)]
        kinds.append(kind)
    flip, dy, dx = (np.array(v) for v in zip(*kinds))
    assert abs(flip.mean() - 0.5) < 0.03
    for t in (dy, dx):
        assert abs((t == 0).mean() - 1 / 2.88) < 0.012 and abs((t == 1).mean() - (t == -1).mean()) < 0.03


def test_train_batches_are_augmented_only_when_asked():
    import train
    images = np.random.default_rng(0).integers(0, 256, (50, 32, 32, 3)).astype(np.uint8)
    plain_cfg, aug_cfg = train.Config(batch_size=64), train.Config(batch_size=64, augment=True)
    plain = train.train_images(plain_cfg, images, np.random.default_rng(5))
    aug = train.train_images(aug_cfg, images, np.random.default_rng(5))  # same draw of images, then augmented
    assert all(any(np.array_equal(p, im) for im in images) for p in plain)
    assert all(any(np.array_equal(a, c) for c in _flips_and_shifts(p).values()) for p, a in zip(plain, aug))
    assert sum(not np.array_equal(p, a) for p, a in zip(plain, aug)) > 32
    assert all(train.parse_args(["--config", c]).augment for c in ("paper-cifar-fc", "paper-cifar-cnn"))
    assert not train.parse_args([]).augment and not train.parse_args(["--config", "paper-mnist-cnn"]).augment

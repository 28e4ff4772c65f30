"""Metrics and data loaders, including the error paths."""
import gzip
import os
import struct

import numpy as np
import pytest

from dlsm import data, metrics


def test_prdc_identical_and_disjoint():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 2))
    m = metrics.prdc(a, a.copy() + 1e-9, k=5)
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and m["coverage"] == 1.0
    far = metrics.prdc(a, a + 100.0, k=5)
    assert far["precision"] == 0.0 and far["recall"] == 0.0 and far["coverage"] == 0.0
    # a fake set collapsed onto half of the real one: precise but not recalled
    half = a[a[:, 0] > 0]
    m = metrics.prdc(a, half, k=5)
    assert m["precision"] > 0.95 and m["recall"] < 0.75
    with pytest.raises(ValueError, match="prdc needs"):
        metrics.prdc(a[:3], a[:3], k=5)


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3)) + np.array([1.0, 0.0, 2.0])
    assert metrics.frechet_distance(a, a) < 1e-6
    np.testing.assert_allclose(metrics.frechet_distance(a, b), 5.0, rtol=0.03)
    c = rng.normal(size=(20000, 3)) * 2.0  # Tr(C1 + C2 - 2 sqrt(C1 C2)) = 3 (1 + 4 - 4) = 3
    np.testing.assert_allclose(metrics.frechet_distance(a, c), 3.0, rtol=0.05)


def test_off_class_fraction():
    ref = np.array([[0.0, 0.0], [10.0, 0.0]])
    lab = np.array([0, 1])
    smp = np.array([[1.0, 0.0], [2.0, 1.0], [9.0, 0.0], [4.0, 0.0]])
    assert metrics.off_class_fraction(smp, 0, ref, lab) == 0.25
    assert metrics.off_class_fraction(smp, 1, ref, lab) == 0.75


def test_score_errors():
    assert metrics.score_errors(np.zeros((4, 2)), np.full((4, 2), 3.0 / np.sqrt(2))) == pytest.approx(3.0)


def _write_idx(path, arr):
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_idx_reader_roundtrip_and_errors(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (7, 28, 28))
    labels = np.arange(7) % 10
    for split, n in (("train", 7), ("t10k", 7)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", imgs[:n])
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", labels[:n])
    x, y, xt, yt = data.load("fashion_mnist", str(tmp_path))
    assert x.shape == (7, 28, 28, 1) and x.dtype == np.float32 and x.max() <= 1.0
    np.testing.assert_array_equal(x[..., 0] * 255.0, imgs.astype(np.float32))
    np.testing.assert_array_equal(y, labels)
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        data.read_idx(str(bad))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load("fashion_mnist", str(tmp_path / "nope"))


@pytest.mark.skipif(not os.path.isdir(data.FASHION_MNIST_DIR), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package():
    x, y, xt, yt = data.load("fashion_mnist", limit_train=100, limit_test=50)
    assert x.shape == (100, 28, 28, 1) and xt.shape == (50, 28, 28, 1)
    assert set(np.unique(y)) <= set(range(10))


def test_moons_and_digits():
    x, y, xt, yt = data.moons()
    assert x.shape == (10000, 2) and set(np.unique(y)) == {0, 1}
    np.testing.assert_allclose(x.mean(0), 0.0, atol=1e-3)  # centred
    assert 55 < x[:, 0].max() - x[:, 0].min() < 65  # x20 of make_moons' width 3
    x, y, xt, yt = data.load("digits")
    assert x.shape[1:] == (8, 8, 1) and len(np.unique(y)) == 10 and x.max() <= 1.0


def test_unknown_dataset_and_missing_cifar(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load("imagenet")
    with pytest.raises(FileNotFoundError, match="never downloads"):
        data.load("cifar10", str(tmp_path))


def test_moons_curve_draw_is_held_out_on_the_training_curves():
    """The held-out moons of benchmarks/heldout_scores_2d.py: on the training curves (within half the
    training spacing of a training point of the same class), not training points, seeded."""
    from scipy.spatial import cKDTree

    x, y, _, _ = data.moons()
    xh, yh = data.moons_curve_draw(2000, seed=5)
    assert xh.shape == (2000, 2) and xh.dtype == np.float32 and np.sum(yh == 0) == 1000
    d, j = cKDTree(x).query(xh)
    spacing = np.pi * 20.0 / 5000  # arc length between neighbouring training points
    assert d.max() <= 0.5 * spacing * 1.01 and np.mean(d < 1e-4) < 0.02
    assert np.all(y[j] == yh)
    np.testing.assert_array_equal(xh, data.moons_curve_draw(2000, seed=5)[0])
    assert not np.allclose(xh, data.moons_curve_draw(2000, seed=6)[0])

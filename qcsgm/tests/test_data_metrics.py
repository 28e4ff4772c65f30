"""Data (toys, oracle scores, IDX / image loaders) and the sample metrics."""
import gzip
import os
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qcsbm import data as D
from qcsbm.metrics import precision_recall


@pytest.mark.parametrize("name", D.TOYS)
def test_toys_shape_and_determinism(name):
    a = D.sample_toy(name, 501, 0)
    assert a.shape == (501, 2) and a.dtype == np.float32 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, D.sample_toy(name, 501, 0))
    assert np.abs(a).max() < 12


def test_checkerboard_occupies_alternate_squares():
    x = D.sample_toy("checkerboard", 4000, 0)
    cell = np.floor(x / 3.0).astype(int)
    assert np.all((cell.sum(1) % 2) == 0)  # only the (i + j) even cells
    assert len({tuple(c) for c in cell}) == 8


@pytest.mark.parametrize("name", ["checkerboard", "gaussian_8"])
def test_exact_oracle_matches_monte_carlo_mixture(name):
    """The closed-form score of p_sigma equals the score of the Monte-Carlo mixture over many samples."""
    sigma = 0.8
    ref = jnp.asarray(D.sample_toy(name, 40000, 7))
    x = jnp.asarray(D.sample_toy(name, 50, 8)) + sigma * jax.random.normal(jax.random.PRNGKey(0), (50, 2))

    def mc_score(xi):
        w = jax.nn.softmax(-jnp.sum((xi - ref) ** 2, -1) / (2 * sigma**2))
        return (w @ ref - xi) / sigma**2

    exact = D.oracle_score_fn(name)(x, jnp.full(50, sigma))
    mc = jax.vmap(mc_score)(x)
    err = jnp.linalg.norm(exact - mc, axis=1) / (jnp.linalg.norm(exact, axis=1) + 1.0)
    assert float(jnp.median(err)) < 0.05


def test_read_idx_roundtrip(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(p, "wb") as f:
        f.write(struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 2, 3, 4) + arr.tobytes())
    np.testing.assert_array_equal(D.read_idx(str(p)), arr)
    with pytest.raises(FileNotFoundError, match="IDX file not found"):
        D.read_idx(str(tmp_path / "missing.gz"))


@pytest.mark.skipif(not os.path.exists(os.path.join(D.FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz")),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_loader():
    x = D.load_images("fashion_mnist", "test")
    assert x.shape == (10000, 28, 28, 1) and 0.0 <= x.min() and x.max() <= 1.0


@pytest.mark.skipif(not os.path.exists(os.path.join(D.FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz")),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_14x14():
    full = D.load_images("fashion_mnist", "test")[:500]
    x = D.load_images("fashion_mnist", "test", size=14)[:500]
    assert x.shape == (500, 14, 14, 1)
    np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-3)  # still on the 256 levels
    # each pixel is the mean of its own 2x2 block, rounded to a level: within half a level of it
    block_means = full.reshape(500, 14, 2, 14, 2, 1).mean((2, 4))
    assert np.abs(x - block_means).max() <= 0.5 / 255 + 1e-6
    assert np.abs(x[:, :, 1:] - block_means[:, :, :-1]).max() > 0.1  # a shifted block would not match


def test_downsample_block_means_and_bad_size():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 17, (3, 8, 8, 2)).astype(np.float32) / 16
    y = D.downsample(x, 2, bins=17)
    want = np.round(x.reshape(3, 2, 4, 2, 4, 2).mean((2, 4)) * 16) / 16
    np.testing.assert_allclose(y, want, atol=1e-6)
    np.testing.assert_allclose(D.downsample(x, 8, bins=17), x)  # native size: unchanged
    np.testing.assert_allclose(D.downsample(np.ones((1, 8, 8, 1), np.float32) * 0.25, 1, 17), 0.25)
    for bad in (3, 0, 16):
        with pytest.raises(ValueError, match="must divide"):
            D.downsample(x, bad, bins=17)


def test_digits_loader_and_dequantize():
    tr, te = D.load_images("digits", "train"), D.load_images("digits", "test")
    assert tr.shape == (1500, 8, 8, 1) and te.shape == (297, 8, 8, 1)
    dq = D.dequantize(tr, D.n_bins("digits"), np.random.default_rng(0))
    assert np.all(np.abs(dq - (tr * 16 + 0.5) / 17) <= 0.5 / 17 + 1e-6)


def test_image_reference_scores_are_the_gaussian_and_mixture_scores():
    rng = np.random.default_rng(0)
    x = np.round(rng.random((6, 2, 2, 1)) * 16) / 16  # 6 images on 17 levels
    gauss, mix = D.image_reference_scores(x, 17)
    c = (x.reshape(6, -1) * 16 + 0.5) / 17
    var0 = 1 / (12 * 17**2)
    y = jnp.asarray(rng.normal(0.5, 0.4, (3, 2, 2, 1)), jnp.float32)
    sig = jnp.asarray([0.05, 0.3, 2.0], jnp.float32)

    def logp(yi, s):  # log of the mixture of N(c_m, (s^2 + var0) I)
        return jax.scipy.special.logsumexp(-jnp.sum((yi - c) ** 2, -1) / (2 * (s**2 + var0)))

    want = jax.vmap(jax.grad(logp))(y.reshape(3, -1), sig).reshape(y.shape)
    np.testing.assert_allclose(mix(y, sig), want, rtol=2e-3, atol=2e-3)
    cov = np.cov(c.T) + var0 * np.eye(4)
    for i in range(3):
        want = -np.linalg.solve(cov + float(sig[i]) ** 2 * np.eye(4), np.asarray(y[i]).ravel() - c.mean(0))
        np.testing.assert_allclose(np.asarray(gauss(y, sig)[i]).ravel(), want, rtol=1e-3, atol=1e-3)
    f = x.reshape(6, -1)
    brute = max(np.linalg.norm(a - b) for a in f for b in f)
    assert abs(D.max_pairwise_distance(x) - brute) < 1e-6


def test_bad_dataset_names_and_paths(tmp_path):
    with pytest.raises(ValueError, match="unknown toy dataset 'moons'"):
        D.sample_toy("moons", 10)
    with pytest.raises(ValueError, match="unknown image dataset 'mnist2'"):
        D.load_images("mnist2")
    with pytest.raises(ValueError, match="not shipped here"):
        D.load_images("cifar10")
    with pytest.raises(FileNotFoundError, match="cifar10 file not found"):
        D.load_images("cifar10", root=str(tmp_path))
    with pytest.raises(FileNotFoundError):
        D.load_images("fashion_mnist", root=str(tmp_path))


def test_precision_recall_limits():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((500, 2))
    p, r = precision_recall(real, real + 1e-4, k=3)
    assert p > 0.99 and r > 0.99
    p, r = precision_recall(real, real + 100.0, k=3)
    assert p == 0.0 and r == 0.0
    # mode dropping: fake covers half the modes -> high precision, recall about one half
    two = np.concatenate([rng.standard_normal((500, 2)) * 0.1, rng.standard_normal((500, 2)) * 0.1 + 10])
    p, r = precision_recall(two, rng.standard_normal((1000, 2)) * 0.1, k=3)
    assert p > 0.9 and 0.4 < r < 0.6
    assert precision_recall(real, np.full((10, 2), np.nan)) == (0.0, 0.0)


def test_kth_smallest_matches_sort_with_ties():
    from qcsbm.metrics import _kth_smallest

    rng = np.random.default_rng(1)
    d = jnp.asarray(rng.integers(0, 5, (64, 40)).astype(np.float32))  # many ties per row
    for k in (0, 1, 3, 7):
        np.testing.assert_array_equal(np.asarray(_kth_smallest(d, k)), np.sort(np.asarray(d), axis=1)[:, k])


@pytest.mark.background
def test_ncsnpp_small_shapes_and_sigma_scaling():
    from qcsbm.models import build_model
    from qcsbm.sde import VESDE

    sde = VESDE(0.01, 10.0)
    model = build_model("ncsnpp_small", sde, nf=8, ch_mult=(1, 2), attn_resolutions=(4,))
    x = jnp.asarray(D.load_images("digits", "test")[:2])
    params = model.init(jax.random.PRNGKey(0), x, jnp.zeros(2))
    s = jax.jit(lambda p, x, t: model.score(p, x, t))(params, x, jnp.array([0.0, 1.0]))
    assert s.shape == x.shape and bool(jnp.all(jnp.isfinite(s)))
    csbm = build_model("ncsnpp_small", sde, conservative=True, nf=8, ch_mult=(1, 2), attn_resolutions=(4,))
    assert csbm.kind == "energy"
    pe = csbm.init(jax.random.PRNGKey(0), x, jnp.zeros(2))
    assert csbm.module.apply(pe, x, jnp.array([0.0, 1.0])).shape == (2,)  # one energy per image
    se = jax.jit(lambda p, x, t: csbm.score(p, x, t))(pe, x, jnp.array([0.0, 1.0]))
    assert se.shape == x.shape and bool(jnp.all(jnp.isfinite(se)))


def test_spiral_oracle_in_chunks_is_the_mixture_score():
    """The spiral's Monte-Carlo oracle, computed in blocks of 100 points (257 points: a padded last block),
    equals the score of the mixture of N(y_m, sigma^2 I) over its reference samples at per-point sigmas."""
    ref = jnp.asarray(D.sample_toy("spiral_2", 20000, 12345))
    x = jnp.asarray(D.sample_toy("spiral_2", 257, 3)) + 0.5 * jax.random.normal(jax.random.PRNGKey(1), (257, 2))
    sigma = jnp.linspace(0.1, 3.0, 257)

    def mix_score(xi, s):
        w = jax.nn.softmax(-jnp.sum((xi - ref) ** 2, -1) / (2 * s**2))
        return (w @ ref - xi) / s**2

    got = D.oracle_score_fn("spiral_2")(x, sigma)
    want = jax.vmap(mix_score)(x, sigma)
    assert got.shape == (257, 2)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-3, atol=1e-3)

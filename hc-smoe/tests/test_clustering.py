import numpy as np
import pytest
from scipy.cluster.hierarchy import cut_tree, linkage as scipy_linkage

from hcsmoe.clustering import LINKAGES, hierarchical_cluster, kmeans, relabel


@pytest.mark.parametrize("method", LINKAGES)
@pytest.mark.parametrize("e,k,seed", [(8, 4, 0), (8, 6, 1), (16, 5, 2), (60, 30, 3), (60, 45, 4), (128, 7, 5)])
def test_hierarchical_equals_scipy(method, e, k, seed):
    x = np.random.default_rng(seed).normal(size=(e, 12))
    labels, merges = hierarchical_cluster(x, k, method, return_merges=True)
    z = scipy_linkage(x, method=method, metric="euclidean")
    ref = relabel(cut_tree(z, n_clusters=k).ravel())
    assert np.array_equal(labels, ref)
    assert len(np.unique(labels)) == k
    # the merge heights agree with scipy's dendrogram too
    np.testing.assert_allclose(sorted(m[2] for m in merges), np.sort(z[: e - k, 2]), rtol=1e-9, atol=1e-12)


def test_complete_is_not_single():
    # chain of points: single linkage chains them, complete linkage does not (guards against the official min/max bug)
    x = np.array([[0.0], [1.0], [2.0], [3.0], [10.0], [10.5]])
    assert len(set(hierarchical_cluster(x, 2, "single")[:4])) == 1
    assert not np.array_equal(hierarchical_cluster(x, 3, "single"), hierarchical_cluster(x, 3, "complete"))


@pytest.mark.parametrize("k", [1, 3, 8])
def test_kmeans_gives_k_clusters(k):
    x = np.random.default_rng(0).normal(size=(8, 5))
    assert len(np.unique(kmeans(x, k))) == k


def test_kmeans_finds_separated_blobs():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 0.1, (5, 3)), rng.normal(10, 0.1, (5, 3))])
    assert np.array_equal(kmeans(x, 2), [0] * 5 + [1] * 5)


@pytest.mark.parametrize("k", [0, 9, -1])
def test_bad_k(k):
    x = np.zeros((8, 2))
    with pytest.raises(ValueError, match="number of clusters"):
        hierarchical_cluster(x, k)
    with pytest.raises(ValueError, match="number of clusters"):
        kmeans(x, k)

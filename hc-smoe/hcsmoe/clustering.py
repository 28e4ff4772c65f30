"""Grouping E experts into k clusters: agglomerative (hierarchical) clustering and K-means.

`hierarchical_cluster` is HC-SMoE's grouping step (paper, method section): start from E singletons and
repeatedly merge the two closest clusters under Euclidean distance until exactly k remain. The
distance between clusters is updated with the Lance-Williams recurrence for each linkage:

    single:   d(k, i+j) = min(d_ki, d_kj)
    complete: d(k, i+j) = max(d_ki, d_kj)                      (the official code used min here)
    average:  d(k, i+j) = (n_i d_ki + n_j d_kj) / (n_i + n_j)
    ward:     d(k, i+j) = sqrt(((n_k+n_i) d_ki^2 + (n_k+n_j) d_kj^2 - n_k d_ij^2) / (n_i+n_j+n_k))
              (squared distances inside, as scipy's ward; the official code used unsquared ones)

The result equals scipy.cluster.hierarchy.linkage + cut_tree on the same features (tested).
"""
from __future__ import annotations

import numpy as np

LINKAGES = ("single", "complete", "average", "ward")


def _check_k(k: int, n: int) -> None:
    if not isinstance(k, (int, np.integer)) or k < 1 or k > n:
        raise ValueError(f"number of clusters k={k!r} must be an integer with 1 <= k <= number of experts ({n})")


def pairwise_euclidean(x: np.ndarray) -> np.ndarray:
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(d2)


def hierarchical_cluster(features: np.ndarray, k: int, linkage: str = "average",
                         return_merges: bool = False):
    """Agglomerative clustering of the rows of `features` (E x D) into exactly k clusters.

    Returns labels (E,) in 0..k-1, numbered by first appearance; with return_merges also the list of
    (a, b, distance) merges performed (cluster ids as in scipy: singletons 0..E-1, then E, E+1, ...).
    """
    if linkage not in LINKAGES:
        raise ValueError(f"unknown linkage {linkage!r}; choose one of {LINKAGES}")
    x = np.asarray(features, dtype=np.float64)
    n = x.shape[0]
    _check_k(k, n)
    d = pairwise_euclidean(x)
    np.fill_diagonal(d, np.inf)
    size = np.ones(n)
    active = np.ones(n, dtype=bool)
    members = {i: [i] for i in range(n)}     # slot -> original experts
    cid = list(range(n))                     # slot -> scipy-style cluster id
    merges = []
    for step in range(n - k):
        flat = np.argmin(d)
        i, j = divmod(int(flat), n)
        if i > j:
            i, j = j, i
        dij = d[i, j]
        ni, nj = size[i], size[j]
        di, dj = d[i].copy(), d[j].copy()
        if linkage == "single":
            new = np.minimum(di, dj)
        elif linkage == "complete":
            new = np.maximum(di, dj)
        elif linkage == "average":
            new = (ni * di + nj * dj) / (ni + nj)
        else:  # ward
            nk = size
            new = np.sqrt(np.maximum(((nk + ni) * di ** 2 + (nk + nj) * dj ** 2 - nk * dij ** 2) / (ni + nj + nk), 0.0))
        merges.append((cid[i], cid[j], float(dij)))
        # cluster i+j lives in slot i; slot j is retired
        new[~active] = np.inf
        d[i, :] = new
        d[:, i] = new
        d[i, i] = np.inf
        d[j, :] = np.inf
        d[:, j] = np.inf
        active[j] = False
        size[i] = ni + nj
        members[i] = members[i] + members.pop(j)
        cid[i] = n + step
    labels = np.empty(n, dtype=np.int64)
    order = sorted(members.values(), key=min)
    for c, group in enumerate(order):
        labels[group] = c
    return (labels, merges) if return_merges else labels


def _sq_dists(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """||x_i - c_j||^2 for all i, j without materialising an (n, k, D) array."""
    return np.maximum((x * x).sum(1)[:, None] + (c * c).sum(1)[None, :] - 2.0 * x @ c.T, 0.0)


def kmeans(features: np.ndarray, k: int, seed: int = 0, iters: int = 100, restarts: int = 5) -> np.ndarray:
    """Lloyd's K-means with k-means++ initialisation; best of `restarts` by inertia. Labels numbered by first appearance."""
    x = np.asarray(features, dtype=np.float64)
    n = x.shape[0]
    _check_k(k, n)
    rng = np.random.default_rng(seed)
    best, best_inertia = None, np.inf
    for _ in range(restarts):
        c = x[[rng.integers(n)]]
        d2 = _sq_dists(x, c)[:, 0]
        for _ in range(k - 1):
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
            c = np.vstack([c, x[rng.choice(n, p=p)]])
            d2 = np.minimum(d2, _sq_dists(x, c[-1:])[:, 0])
        for _ in range(iters):
            lab = _sq_dists(x, c).argmin(1)
            # an empty cluster takes the point farthest from its centre, so exactly k clusters remain
            for j in range(k):
                if not np.any(lab == j):
                    far = ((x - c[lab]) ** 2).sum(1).argmax()
                    lab[far] = j
            newc = np.array([x[lab == j].mean(0) for j in range(k)])
            if np.allclose(newc, c):
                break
            c = newc
        inertia = ((x - c[lab]) ** 2).sum()
        if inertia < best_inertia:
            best, best_inertia = lab, inertia
    return relabel(best)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber cluster labels 0..k-1 in order of first appearance (canonical form for comparisons)."""
    out = np.empty(len(labels), dtype=np.int64)
    seen: dict[int, int] = {}
    for i, l in enumerate(labels):
        out[i] = seen.setdefault(int(l), len(seen))
    return out

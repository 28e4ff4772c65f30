"""PNG figures: the course, NeRF renders vs ground truth, lighting strip, mesh, trajectories, curves."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .geometry import box_corners_2d  # noqa: E402


def draw_course(ax, course, obstacle_map=None):
    s = np.linspace(-0.5, course.length + 0.5, 300)
    for d, style in ((0.0, "y--"), (course.half_width, "k-"), (-course.half_width, "k-")):
        p = course.world_from_frenet(s, np.full_like(s, d))
        ax.plot(p[:, 0], p[:, 1], style, lw=1)
    if obstacle_map is not None:
        X, Y = obstacle_map.cell_centers()
        ax.pcolormesh(X, Y, obstacle_map.occ, cmap="Greys", alpha=0.5, shading="auto")
    for b in course.boxes:
        c = box_corners_2d(b)
        col = {"wall": "tab:brown", "obstacle": "tab:orange", "pole": "tab:gray"}[b.kind]
        ax.fill(c[:, 0], c[:, 1], color=col, alpha=0.8)
    g = course.pose_at(course.length)
    ax.plot(g[0], g[1], "g*", ms=12)
    ax.set_aspect("equal")


def plot_course(path, course, images=None):
    fig, axes = plt.subplots(1, 2 if images is not None else 1, figsize=(11, 5))
    ax = axes[0] if images is not None else axes
    draw_course(ax, course)
    ax.set_title("course (top view): road, lanes, walls, barriers, goal")
    if images is not None:
        axes[1].imshow(np.concatenate([np.concatenate(list(row), 1) for row in images], 0))
        axes[1].set_title("real world / standard sim from the vehicle camera")
        axes[1].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_image_grid(path, rows, row_labels, title):
    fig, axes = plt.subplots(len(rows), len(rows[0]), figsize=(1.6 * len(rows[0]), 1.4 * len(rows)), squeeze=False)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            axes[i, j].imshow(np.clip(np.asarray(img), 0, 1))
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(row_labels[i], fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_mesh(path, verts, course, gt_map, mesh_map):
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    v = verts[(verts[:, 2] > 0.08)]
    if len(v) > 30000:
        v = v[np.random.default_rng(0).choice(len(v), 30000, replace=False)]
    sc = axes[0].scatter(v[:, 0], v[:, 1], c=v[:, 2], s=0.3, cmap="viridis", vmin=0, vmax=1.2)
    fig.colorbar(sc, ax=axes[0], label="z (m)")
    axes[0].set_title("marching-cubes mesh vertices above ground")
    axes[0].set_aspect("equal")
    draw_course(axes[1], course, gt_map)
    axes[1].set_title("ground-truth obstacle map (vehicle height)")
    draw_course(axes[2], course, mesh_map)
    axes[2].set_title("obstacle map from the NeRF mesh")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_trajectories(path, course, results: dict, maps: dict | None = None):
    """results[world][policy] = evaluate(...) output with trajectories."""
    worlds = list(results)
    policies = list(results[worlds[0]])
    fig, axes = plt.subplots(len(policies), len(worlds), figsize=(3.6 * len(worlds), 3.4 * len(policies)), squeeze=False)
    colors = {"success": "tab:green", "collision": "tab:red", "offroad": "tab:purple", "timeout": "tab:gray"}
    for j, w in enumerate(worlds):
        for i, p in enumerate(policies):
            ax = axes[i, j]
            draw_course(ax, course, (maps or {}).get(w))
            r = results[w][p]
            for tr, oc in zip(r["trajectories"], r["outcome"]):
                ax.plot(tr[:, 0], tr[:, 1], color=colors[oc], lw=0.8)
            ax.set_title(f"{p} in {w}: success {r['success']:.2f}", fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_curves(path, curves: dict):
    """curves[name] = (x, y, ylabel)."""
    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.4), squeeze=False)
    for ax, (name, (x, y, yl)) in zip(axes[0], curves.items()):
        ax.plot(x, y)
        ax.set_title(name)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

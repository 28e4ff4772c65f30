"""Collision geometry: exact ground truth, and the mesh extracted from the NeRF.

- `extract_mesh`: marching cubes (Lorensen & Cline 1987, via scikit-image) on the NeRF's density
  grid at a density level; vertices in world coordinates.
- `ObstacleMap`: a 2-D occupancy grid at vehicle height (the collision body the NeRF world
  uses), built from a mesh (vertices in the height band, closed and hole-filled) or from boxes.
- `GroundTruthCollider`: exact oriented-rectangle overlap (separating-axis theorem) between the
  vehicle footprint and the footprints of the course's boxes.
- Agreement of a mesh with ground truth: obstacle-map IoU and Chamfer distance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .course import Box

# vehicle footprint (m): the UGV is 0.5 m long, 0.3 m wide; its body spans this height band
CAR_LENGTH, CAR_WIDTH = 0.5, 0.3
HEIGHT_BAND = (0.15, 0.5)
# the obstacle map's cell (m): a cell is an obstacle when its centre is, so the map's edge lies up to half a cell
# outside a surface; at 0.1 m cells the true boxes alone ended 6 of PPO's 24 collision-free real-world
# trajectories (passes within a few cm of barrier 2, README), at 0.05 m none (tests/test_geometry.py). The one source
# of truth: every `cell` default of this package and train.py's --obstacle-cell read it (tests/test_geometry.py)
OBSTACLE_CELL = 0.05


def extract_mesh(density: np.ndarray, origin, spacing, level: float, upsample: int = 1):
    """Marching cubes of a density volume (nx, ny, nz); returns vertices (world) and faces.
    upsample > 1 runs it on the trilinearly resampled volume (a finer mesh of the same field)."""
    from skimage.measure import marching_cubes
    if upsample > 1:
        density = ndimage.zoom(density, [(upsample * (n - 1) + 1) / n for n in density.shape], order=1, grid_mode=False)
        spacing = np.asarray(spacing, dtype=np.float64) / upsample
    if not (density.min() < level < density.max()):
        raise ValueError(f"level {level} is outside the density range [{density.min():.3g}, {density.max():.3g}]")
    verts, faces, _, _ = marching_cubes(density, level=level, spacing=tuple(float(s) for s in spacing))
    return verts + np.asarray(origin, dtype=np.float64)[None], faces


def write_obj(path, verts, faces):
    with open(path, "w") as f:
        f.write("".join(f"v {a:.4f} {b:.4f} {c:.4f}\n" for a, b, c in verts))
        f.write("".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces))


def footprint_corners(states, length=CAR_LENGTH, width=CAR_WIDTH) -> np.ndarray:
    """Corners (B, 4, 2) of vehicle rectangles centred at (x, y) with heading yaw."""
    st = np.atleast_2d(states)
    c, s = np.cos(st[:, 2]), np.sin(st[:, 2])
    lx, ly = np.array([1, 1, -1, -1]) * length / 2, np.array([1, -1, -1, 1]) * width / 2
    x = st[:, :1] + c[:, None] * lx - s[:, None] * ly
    y = st[:, 1:2] + s[:, None] * lx + c[:, None] * ly
    return np.stack([x, y], -1)


def footprint_points(states, n_long=5, n_lat=3, length=CAR_LENGTH, width=CAR_WIDTH) -> np.ndarray:
    """A grid of points (B, n_long*n_lat, 2) covering each vehicle footprint."""
    st = np.atleast_2d(states)
    u, v = np.meshgrid(np.linspace(-0.5, 0.5, n_long) * length, np.linspace(-0.5, 0.5, n_lat) * width, indexing="ij")
    u, v = u.ravel(), v.ravel()
    c, s = np.cos(st[:, 2:3]), np.sin(st[:, 2:3])
    return np.stack([st[:, :1] + c * u - s * v, st[:, 1:2] + s * u + c * v], -1)


def triangle_points(tri: np.ndarray, spacing: float) -> np.ndarray:
    """Points spread over triangles (T, 3, 3) on a barycentric grid no coarser than `spacing` (vertices included)."""
    edge = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=-1).max()
    n = max(1, int(np.ceil(edge / spacing)))
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = i + j <= n
    bary = np.stack([i[keep], j[keep], n - i[keep] - j[keep]], -1) / n  # (P, 3)
    return np.einsum("pk,tkd->tpd", bary, tri).reshape(-1, 3)


def box_corners_2d(b: Box) -> np.ndarray:
    return footprint_corners(np.array([[b.center[0], b.center[1], b.yaw]]), 2 * b.half[0], 2 * b.half[1])[0]


def _sat_overlap(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Separating-axis test of rectangles A (N, 4, 2) against one rectangle B (4, 2)."""
    axes = [A[:, 1] - A[:, 0], A[:, 3] - A[:, 0], np.broadcast_to(B[1] - B[0], A[:, 0].shape), np.broadcast_to(B[3] - B[0], A[:, 0].shape)]
    overlap = np.ones(len(A), dtype=bool)
    for ax in axes:
        pa = np.einsum("nkd,nd->nk", A, ax)
        pb = np.einsum("kd,nd->nk", B, ax)
        overlap &= (pa.max(1) >= pb.min(1)) & (pb.max(1) >= pa.min(1))
    return overlap


@dataclass
class GroundTruthCollider:
    boxes: list

    def collides(self, states) -> np.ndarray:
        """Exact: does each vehicle footprint overlap a box that reaches into the vehicle's height band?"""
        A = footprint_corners(states)
        hit = np.zeros(len(A), dtype=bool)
        for b in self.boxes:
            if b.center[2] + b.half[2] < HEIGHT_BAND[0] or b.center[2] - b.half[2] > HEIGHT_BAND[1]:
                continue
            hit |= _sat_overlap(A, box_corners_2d(b))
        return hit


@dataclass
class ObstacleMap:
    """Boolean occupancy grid over the x-y plane at vehicle height."""

    occ: np.ndarray  # (nx, ny)
    origin: tuple[float, float]
    cell: float

    @staticmethod
    def empty(aabb, cell):
        lo, hi = np.asarray(aabb[0][:2]), np.asarray(aabb[1][:2])
        n = np.ceil((hi - lo) / cell).astype(int)
        return ObstacleMap(np.zeros(tuple(n), dtype=bool), (float(lo[0]), float(lo[1])), cell)

    def cell_centers(self):
        ix, iy = np.meshgrid(np.arange(self.occ.shape[0]), np.arange(self.occ.shape[1]), indexing="ij")
        return self.origin[0] + (ix + 0.5) * self.cell, self.origin[1] + (iy + 0.5) * self.cell

    def index(self, xy):
        ij = np.floor((np.asarray(xy)[..., :2] - np.asarray(self.origin)) / self.cell).astype(int)
        inside = (ij[..., 0] >= 0) & (ij[..., 1] >= 0) & (ij[..., 0] < self.occ.shape[0]) & (ij[..., 1] < self.occ.shape[1])
        return ij, inside

    def occupied(self, xy) -> np.ndarray:
        ij, inside = self.index(xy)
        ij = np.where(inside[..., None], ij, 0)
        return inside & self.occ[ij[..., 0], ij[..., 1]]

    def footprint_samples(self, states) -> np.ndarray:
        """(B, P, 2) points covering each vehicle footprint at no more than half a cell apart, so that every cell
        wholly under it holds a sample (a lattice of spacing h leaves no disc of radius h / sqrt(2) empty, and a
        cell holds a disc of radius cell / 2); a fixed 5 x 3 grid (0.125 x 0.15 m) let a 0.1 m cell, a lamp
        pole's size, pass between its points (tests/test_geometry.py)."""
        h = self.cell / 2
        return footprint_points(states, int(np.ceil(CAR_LENGTH / h)) + 1, int(np.ceil(CAR_WIDTH / h)) + 1)

    def collides(self, states) -> np.ndarray:
        """Does an occupied cell lie under each vehicle footprint (sampled by `footprint_samples`)?"""
        return self.occupied(self.footprint_samples(states)).any(-1)

    @staticmethod
    def from_boxes(boxes, aabb, cell: float = OBSTACLE_CELL):
        m = ObstacleMap.empty(aabb, cell)
        X, Y = m.cell_centers()
        pts = np.stack([X.ravel(), Y.ravel(), np.zeros(X.size)], -1)
        occ = np.zeros(X.size, dtype=bool)
        for b in boxes:
            if b.center[2] + b.half[2] < HEIGHT_BAND[0] or b.center[2] - b.half[2] > HEIGHT_BAND[1]:
                continue
            c, s = np.cos(b.yaw), np.sin(b.yaw)
            qx, qy = pts[:, 0] - b.center[0], pts[:, 1] - b.center[1]
            lx, ly = c * qx + s * qy, -s * qx + c * qy
            occ |= (np.abs(lx) <= b.half[0]) & (np.abs(ly) <= b.half[1])
        m.occ = occ.reshape(X.shape)
        return m

    @staticmethod
    def from_mesh(verts, faces, aabb, cell: float = OBSTACLE_CELL, band=HEIGHT_BAND, min_layers: int = 2, layer: float = 0.1, supersample: int = 4):
        """Rasterise the mesh's surface in the height band on a grid `supersample` times finer than `cell`
        (points spread over each triangle at the fine spacing); a fine cell is an obstacle when its surface
        spans at least `min_layers` height layers of `layer` m (a wall does, a flat floater does not); then
        close gaps up to ~cell and fill enclosed interiors. A cell of the returned map is an obstacle when
        its centre is: marking every cell a surface point falls in would put the boundary up to one cell
        outside the surface (a barrier 0.1 m fatter on average at 0.1 m cells, tests/test_geometry.py)."""
        fine = ObstacleMap.empty(aabb, cell / supersample)
        tri = verts[faces]
        tri = tri[(tri[..., 2].max(1) >= band[0]) & (tri[..., 2].min(1) <= band[1])]
        pts = triangle_points(tri, fine.cell) if len(tri) else np.zeros((0, 3))
        pts = pts[(pts[:, 2] >= band[0]) & (pts[:, 2] <= band[1])]
        ij, inside = fine.index(pts[:, :2])
        ij, z = ij[inside], pts[inside, 2]
        n_layers = int(np.ceil((band[1] - band[0]) / layer))
        k = np.minimum(((z - band[0]) / layer).astype(int), n_layers - 1)
        layers = np.zeros(fine.occ.shape + (n_layers,), dtype=bool)
        layers[ij[:, 0], ij[:, 1], k] = True
        occ = layers.sum(-1) >= min_layers
        fine.occ = ndimage.binary_fill_holes(ndimage.binary_closing(occ, iterations=supersample))
        m = ObstacleMap.empty(aabb, cell)
        X, Y = m.cell_centers()
        m.occ = fine.occupied(np.stack([X, Y], -1))
        return m

    def resample(self, other: "ObstacleMap") -> np.ndarray:
        """This map read at the cell centres of `other` (for IoU on a common grid)."""
        X, Y = other.cell_centers()
        return self.occupied(np.stack([X, Y], -1))


def obstacle_iou(pred: ObstacleMap, gt: ObstacleMap, mask: np.ndarray | None = None) -> float:
    p = pred.resample(gt)
    g = gt.occ
    if mask is not None:
        p, g = p & mask, g & mask
    union = (p | g).sum()
    return float((p & g).sum() / union) if union else 1.0


def box_surface_points(boxes, spacing=0.05, z_range=(0.0, np.inf)) -> np.ndarray:
    """Points on the side and top faces of the boxes (ground truth for Chamfer distance)."""
    pts = []
    for b in boxes:
        hx, hy, hz = b.half
        for axis in range(3):
            for sgn in (-1, 1):
                if axis == 2 and sgn < 0:
                    continue  # bottom faces rest on the ground
                dims = [np.arange(-h, h + 1e-9, spacing) for h in (hx, hy, hz)]
                dims[axis] = np.array([sgn * (hx, hy, hz)[axis]])
                g = np.stack(np.meshgrid(*dims, indexing="ij"), -1).reshape(-1, 3)
                c, s = np.cos(b.yaw), np.sin(b.yaw)
                w = np.stack([b.center[0] + c * g[:, 0] - s * g[:, 1], b.center[1] + s * g[:, 0] + c * g[:, 1], b.center[2] + g[:, 2]], -1)
                pts.append(w)
    p = np.concatenate(pts)
    return p[(p[:, 2] >= z_range[0]) & (p[:, 2] <= z_range[1])]


def chamfer_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Chamfer distance: mean nearest-neighbour distance a->b plus b->a, halved."""
    if len(a) == 0 or len(b) == 0:
        return float("inf")
    da, _ = cKDTree(b).query(a)
    db, _ = cKDTree(a).query(b)
    return float(0.5 * (da.mean() + db.mean()))


def mesh_agreement(verts, faces, course, cell: float = OBSTACLE_CELL) -> dict:
    """Agreement of a NeRF mesh with the course's ground truth: obstacle-map IoU at vehicle height on
    the road and in the corridor road +- 1.5 m (the part the captures cover), and the Chamfer distance
    between mesh vertices and box surfaces in the vehicle's height band within that corridor. The mesh's map has
    `cell`; the ground truth is read at cell centres no coarser than OBSTACLE_CELL."""
    mesh_map = ObstacleMap.from_mesh(verts, faces, course.aabb, cell)
    gt_map = ObstacleMap.from_boxes(course.boxes, course.aabb, min(cell, OBSTACLE_CELL))
    X, Y = gt_map.cell_centers()
    _, dd = course.frenet(X.ravel(), Y.ravel())
    lim = course.half_width + 1.5
    corridor = (np.abs(dd) < lim).reshape(X.shape)
    road = (np.abs(dd) < course.half_width).reshape(X.shape)
    gt_pts = box_surface_points(course.boxes, 0.05, HEIGHT_BAND)
    mesh_pts = verts[(verts[:, 2] >= HEIGHT_BAND[0]) & (verts[:, 2] <= HEIGHT_BAND[1])]
    _, dg = course.frenet(gt_pts[:, 0], gt_pts[:, 1])
    _, dm = course.frenet(mesh_pts[:, 0], mesh_pts[:, 1])
    return {"iou_road": obstacle_iou(mesh_map, gt_map, road), "iou_corridor": obstacle_iou(mesh_map, gt_map, corridor),
            "chamfer_m": chamfer_distance(mesh_pts[np.abs(dm) < lim], gt_pts[np.abs(dg) < lim]),
            "mesh_map": mesh_map, "gt_map": gt_map}

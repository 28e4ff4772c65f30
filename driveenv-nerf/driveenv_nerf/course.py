"""The procedural driving course: road centreline, lane geometry, walls and obstacles.

Everything here is exact ground truth. The "real world", the "standard simulator" and the
NeRF environment all share this layout (the NeRF world only through its learnt geometry for
collisions; the road map itself plays the role of the HD map a real deployment would have).

World frame: z up, metres. A point's road coordinates are (s, d): arc length along the
centreline and signed lateral offset (positive to the left of the driving direction).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class Box:
    """An upright box rotated by `yaw` about z. `kind` picks its material."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    yaw: float = 0.0
    kind: str = "wall"  # wall | obstacle | pole


@dataclass
class Course:
    """Straight / arc segments from a start pose, plus boxes and street lamps."""

    segments: list[tuple] = field(default_factory=list)  # ("straight", L) | ("arc", R, angle)
    road_width: float = 2.0
    boxes: list[Box] = field(default_factory=list)
    lamps: list[tuple[float, float, float]] = field(default_factory=list)
    crosswalks: list[tuple[float, float]] = field(default_factory=list)  # (s_start, s_end)
    obstacles_sd: list[tuple[float, float]] = field(default_factory=list)  # (s, d) of road obstacles
    start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    aabb: tuple[tuple[float, float, float], tuple[float, float, float]] = ((-1.5, -3.0, -0.2), (11.0, 9.5, 1.6))

    def __post_init__(self):
        # start pose and arc length of each segment
        self._seg_start = []
        x, y, yaw = self.start
        s = 0.0
        for seg in self.segments:
            self._seg_start.append((x, y, yaw, s))
            if seg[0] == "straight":
                L = seg[1]
                x, y, s = x + L * math.cos(yaw), y + L * math.sin(yaw), s + L
            else:
                R, ang = seg[1], seg[2]
                sign = 1.0 if ang > 0 else -1.0
                cx, cy = x - sign * R * math.sin(yaw), y + sign * R * math.cos(yaw)
                yaw2 = yaw + ang
                x, y = cx + sign * R * math.sin(yaw2), cy - sign * R * math.cos(yaw2)
                yaw, s = yaw2, s + R * abs(ang)
        self.length = s
        self.end = (x, y, yaw)

    @property
    def half_width(self) -> float:
        return 0.5 * self.road_width

    # ------------------------------------------------------------------ centreline
    def pose_at(self, s) -> np.ndarray:
        """Centreline pose (x, y, yaw) at arc length(s) s, shape (..., 3). Extends straight past the ends."""
        s = np.asarray(s, dtype=np.float64)
        out = np.zeros(s.shape + (3,))
        for k, seg in enumerate(self.segments):
            x0, y0, yaw0, s0 = self._seg_start[k]
            seg_len = seg[1] if seg[0] == "straight" else seg[1] * abs(seg[2])
            lo = -np.inf if k == 0 else s0
            hi = np.inf if k == len(self.segments) - 1 else s0 + seg_len
            m = (s >= lo) & (s < hi) if k < len(self.segments) - 1 else (s >= lo)
            u = s[m] - s0
            if seg[0] == "straight":
                out[m] = np.stack([x0 + u * math.cos(yaw0), y0 + u * math.sin(yaw0), np.full_like(u, yaw0)], -1)
            else:
                R, ang = seg[1], seg[2]
                sign = 1.0 if ang > 0 else -1.0
                cx, cy = x0 - sign * R * math.sin(yaw0), y0 + sign * R * math.cos(yaw0)
                uu = np.clip(u, 0.0, seg_len)  # arcs never sit at the open ends
                yaw = yaw0 + sign * uu / R
                out[m] = np.stack([cx + sign * R * np.sin(yaw), cy - sign * R * np.cos(yaw), yaw], -1)
        return out

    def frenet(self, x, y):
        """Road coordinates (s, d) of world points; works on numpy arrays and torch tensors."""
        is_torch = torch.is_tensor(x)
        X = x if is_torch else torch.as_tensor(np.asarray(x, dtype=np.float64))
        Y = y if is_torch else torch.as_tensor(np.asarray(y, dtype=np.float64))
        best = torch.full_like(X, float("inf"))
        S = torch.zeros_like(X)
        D = torch.zeros_like(X)
        n = len(self.segments)
        for k, seg in enumerate(self.segments):
            x0, y0, yaw0, s0 = self._seg_start[k]
            if seg[0] == "straight":
                L = seg[1]
                tx, ty = math.cos(yaw0), math.sin(yaw0)
                u = (X - x0) * tx + (Y - y0) * ty
                v = -(X - x0) * ty + (Y - y0) * tx  # left normal component
                lo = -float("inf") if k == 0 else 0.0
                hi = float("inf") if k == n - 1 else L
                uc = u.clamp(lo, hi)
                dist = torch.sqrt((u - uc) ** 2 + v ** 2)
                s_k, d_k = s0 + uc, v
            else:
                R, ang = seg[1], seg[2]
                sign = 1.0 if ang > 0 else -1.0
                cx, cy = x0 - sign * R * math.sin(yaw0), y0 + sign * R * math.cos(yaw0)
                px, py = X - cx, Y - cy
                r = torch.sqrt(px ** 2 + py ** 2).clamp_min(1e-9)
                ax, ay = x0 - cx, y0 - cy  # radial vector at segment start
                theta = sign * torch.atan2(ax * py - ay * px, ax * px + ay * py)
                # theta in (-pi, pi]; the swept range is [0, |ang|]
                thc = theta.clamp(0.0, abs(ang))
                cs, sn = torch.cos(sign * thc), torch.sin(sign * thc)
                ex, ey = cx + ax * cs - ay * sn, cy + ax * sn + ay * cs  # start radial rotated by thc
                inside = (theta >= 0) & (theta <= abs(ang))
                dist = torch.where(inside, (r - R).abs(), torch.sqrt((X - ex) ** 2 + (Y - ey) ** 2))
                s_k = s0 + R * thc
                d_k = sign * (R - r)
            better = dist < best
            best = torch.where(better, dist, best)
            S = torch.where(better, s_k, S)
            D = torch.where(better, d_k, D)
        if is_torch:
            return S, D
        return S.numpy(), D.numpy()

    def world_from_frenet(self, s, d) -> np.ndarray:
        """(x, y, yaw) of the point at road coordinates (s, d)."""
        p = self.pose_at(s)
        d = np.asarray(d, dtype=np.float64)
        return np.stack([p[..., 0] - d * np.sin(p[..., 2]), p[..., 1] + d * np.cos(p[..., 2]), p[..., 2]], -1)

    def in_aabb(self, xyz, margin: float = 0.0) -> np.ndarray:
        lo, hi = np.asarray(self.aabb[0]), np.asarray(self.aabb[1])
        xyz = np.asarray(xyz)
        return np.all((xyz >= lo - margin) & (xyz <= hi + margin), axis=-1)


def campus_course() -> Course:
    """The default course: a straight, a 90-degree left curve, a straight with a crosswalk.

    Two traffic barriers block half of the road each (one per straight), so a policy must read
    the image to change lanes; walls, a building and street lamps stand beside the road.
    """
    segs = [("straight", 5.0), ("arc", 3.0, math.pi / 2), ("straight", 5.0)]
    boxes = [
        Box((2.5, -2.2, 0.5), (2.5, 0.3, 0.5), 0.0, "wall"),  # building right of the first straight
        Box((10.2, 6.5, 0.6), (0.2, 1.5, 0.6), 0.0, "wall"),  # wall right of the last straight
        Box((5.5, 10.0 - 0.8, 0.35), (1.0, 0.25, 0.35), 0.0, "wall"),  # low wall left, end of course
    ]
    cx, cy, rr = 5.0, 3.0, 5.0  # outer wall of the curve (right-hand side), three panels
    for deg in (-75.0, -45.0, -15.0):
        a = math.radians(deg)
        boxes.append(Box((cx + rr * math.cos(a), cy + rr * math.sin(a), 0.4), (1.2, 0.15, 0.4), a + math.pi / 2, "wall"))
    course = Course(segments=segs, road_width=2.0, boxes=boxes,
                    lamps=[(1.2, 1.6, 1.4), (6.0, 1.0, 1.4), (6.6, 7.0, 1.4)],
                    crosswalks=[(9.9, 10.7)],
                    obstacles_sd=[(2.8, -0.45), (12.2, 0.45)])
    for s, d in course.obstacles_sd:
        x, y, yaw = course.world_from_frenet(s, d)
        course.boxes.append(Box((float(x), float(y), 0.3), (0.2, 0.3, 0.3), float(yaw), "obstacle"))
    for lx, ly, lz in course.lamps:
        course.boxes.append(Box((lx, ly, 0.5 * lz), (0.05, 0.05, 0.5 * lz), 0.0, "pole"))
    return course

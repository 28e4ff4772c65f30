"""Two renderers of the same course.

`RealWorldRenderer` is the stand-in for the real world: exact ray casting against the ground
plane and the course's boxes, procedural textures (asphalt, lane markings, crosswalk, grass,
brick, striped barriers), Lambertian sun + sky ambient with hard shadows, street lamps that
light up at dusk and night, distance fog, per-image exposure and Gaussian sensor noise.

`StandardSimRenderer` is the "standard simulator": the same layout, flat untextured colours,
one fixed lighting, no shadows, no noise (what a stock simulator's renderer would show).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .camera import Intrinsics, generate_rays
from .course import Course

KINDS = {"wall": 0, "obstacle": 1, "pole": 2}


@dataclass(frozen=True)
class Lighting:
    name: str
    sun_dir: tuple[float, float, float]
    sun_color: tuple[float, float, float]
    ambient: tuple[float, float, float]
    sky_zenith: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    lamp_intensity: float
    noise_std: float
    fog_dist: float = 25.0


LIGHTINGS = {
    "day": Lighting("day", (0.4, -0.3, 0.85), (0.95, 0.92, 0.85), (0.33, 0.36, 0.42), (0.30, 0.50, 0.88), (0.75, 0.84, 0.95), 0.0, 0.01),
    "dusk": Lighting("dusk", (-0.75, 0.45, 0.22), (0.85, 0.45, 0.22), (0.20, 0.16, 0.22), (0.20, 0.17, 0.38), (0.90, 0.52, 0.30), 0.35, 0.02),
    "night": Lighting("night", (0.2, 0.3, 0.9), (0.08, 0.09, 0.14), (0.03, 0.035, 0.06), (0.01, 0.01, 0.035), (0.04, 0.04, 0.08), 1.2, 0.035, 12.0),
}
LAMP_COLOR = (1.0, 0.78, 0.45)
# what a pixel shows (RealWorldRenderer.labels); the three box kinds follow KINDS' order
PIXEL_LABELS = ("sky", "grass", "asphalt", "edge line", "centre line", "crosswalk", "wall / building", "barrier", "lamp pole")


def _t(x, device=None):
    return torch.as_tensor(x, dtype=torch.float32, device=device)


class BoxSet:
    """The course's boxes as tensors, with exact ray-box intersection (slab method)."""

    def __init__(self, boxes):
        self.center = _t([b.center for b in boxes]).reshape(-1, 3)
        self.half = _t([b.half for b in boxes]).reshape(-1, 3)
        yaw = _t([b.yaw for b in boxes]).reshape(-1)
        self.cos, self.sin = torch.cos(yaw), torch.sin(yaw)
        self.kind = torch.as_tensor([KINDS[b.kind] for b in boxes], dtype=torch.long)

    def to_local(self, p, is_dir=False):
        """World (N, 3) -> every box's frame (N, B, 3)."""
        q = p[:, None, :] if is_dir else p[:, None, :] - self.center[None]
        x = self.cos * q[..., 0] + self.sin * q[..., 1]
        y = -self.sin * q[..., 0] + self.cos * q[..., 1]
        return torch.stack([x, y, q[..., 2].expand_as(x)], -1)

    def intersect(self, o, d):
        """First hit of each ray with each box: t (N, B) (inf if missed) and the hit face axis (N, B)."""
        ol, dl = self.to_local(o), self.to_local(d, is_dir=True)
        dl = torch.where(dl.abs() < 1e-12, torch.full_like(dl, 1e-12), dl)
        t1, t2 = (-self.half - ol) / dl, (self.half - ol) / dl
        tnear, tfar = torch.minimum(t1, t2), torch.maximum(t1, t2)
        tmin, axis = tnear.max(-1)
        tmax = tfar.min(-1).values
        hit = (tmax >= tmin) & (tmin > 1e-6)
        return torch.where(hit, tmin, torch.full_like(tmin, float("inf"))), axis, dl

    def normal(self, idx, axis, dl):
        """World normal of the face hit: idx, axis (N,), dl (N, B, 3) local directions."""
        ar = torch.arange(len(idx))
        sgn = -torch.sign(dl[ar, idx, axis])
        nl = torch.zeros(len(idx), 3)
        nl[ar, axis] = sgn
        c, s = self.cos[idx], self.sin[idx]
        return torch.stack([c * nl[:, 0] - s * nl[:, 1], s * nl[:, 0] + c * nl[:, 1], nl[:, 2]], -1)

    def any_hit(self, o, d):
        return torch.isfinite(self.intersect(o, d)[0]).any(-1)


def cast(boxes: BoxSet, o, d):
    """Closest surface along each ray: (t, surface id) with id -1 = ground, -2 = sky, else box index."""
    tb, axis, dl = boxes.intersect(o, d)
    tbox, ib = tb.min(-1)
    tg = torch.where(d[:, 2] < -1e-9, -o[:, 2] / d[:, 2].clamp(max=-1e-9), torch.full_like(tbox, float("inf")))
    tg = torch.where(tg > 0, tg, torch.full_like(tg, float("inf")))
    t = torch.minimum(tbox, tg)
    sid = torch.where(tbox < tg, ib, torch.full_like(ib, -1))
    sid = torch.where(torch.isfinite(t), sid, torch.full_like(ib, -2))
    ax = axis.gather(1, ib[:, None])[:, 0]
    return t, sid, ib, ax, dl


def _hash2(ix, iy, seed):
    return torch.frac(torch.sin(ix * 127.1 + iy * 311.7 + seed * 74.7) * 43758.5453)


def value_noise(x, y, scale, seed=0.0):
    """Smooth lattice noise in [0, 1] (bilinear, smoothstep-weighted)."""
    x, y = x / scale, y / scale
    ix, iy = torch.floor(x), torch.floor(y)
    fx, fy = x - ix, y - iy
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    a, b = _hash2(ix, iy, seed), _hash2(ix + 1, iy, seed)
    c, e = _hash2(ix, iy + 1, seed), _hash2(ix + 1, iy + 1, seed)
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + e * fx) * fy


def fbm(x, y, scale, seed=0.0):
    return 0.5 * value_noise(x, y, scale, seed) + 0.3 * value_noise(x, y, scale / 2.3, seed + 1) + 0.2 * value_noise(x, y, scale / 5.1, seed + 2)


class _Base:
    def __init__(self, course: Course, K: Intrinsics):
        self.course, self.K = course, K
        self.boxes = BoxSet(course.boxes)

    def render(self, c2w, **kw) -> torch.Tensor:
        """Images (B, H, W, 3) in [0, 1] for camera-to-world poses (B, 4, 4)."""
        o, d = generate_rays(c2w, self.K)
        shp = o.shape[:-1]
        rgb = self.shade_rays(o.reshape(-1, 3), d.reshape(-1, 3), **kw)
        return rgb.reshape(*shp, 3)

    def depth(self, c2w) -> torch.Tensor:
        o, d = generate_rays(c2w, self.K)
        t = cast(self.boxes, o.reshape(-1, 3), d.reshape(-1, 3))[0]
        return t.reshape(o.shape[:-1])


class RealWorldRenderer(_Base):
    """High-fidelity stand-in for the real world (textures, lighting, shadows, noise)."""

    def ground_marks(self, p):
        """Which ground points (N, 3) lie on the road, on an edge line, on the dashed centre line, on the crosswalk."""
        c = self.course
        s, dd = c.frenet(p[:, 0].double(), p[:, 1].double())
        s, dd = s.float(), dd.float()
        hw = c.half_width
        on_road = dd.abs() <= hw
        edge = (dd.abs() > hw - 0.11) & (dd.abs() < hw - 0.05) & (s > -1.0) & (s < c.length + 1.0)
        centre = (dd.abs() < 0.03) & (torch.remainder(s, 0.6) < 0.3)
        cross = torch.zeros_like(on_road)
        for s0, s1 in c.crosswalks:
            cross |= (s > s0) & (s < s1) & on_road & (torch.remainder(dd + hw, 0.25) < 0.13)
            centre &= ~((s > s0 - 0.1) & (s < s1 + 0.1))
        return on_road, edge, centre, cross

    def ground_albedo(self, p):
        n = fbm(p[:, 0], p[:, 1], 0.35)
        asphalt = _t([0.30, 0.30, 0.32]) * (0.8 + 0.4 * n[:, None])
        grass = _t([0.22, 0.42, 0.15]) * (0.6 + 0.8 * fbm(p[:, 0], p[:, 1], 0.25, 7.0)[:, None])
        white, yellow = _t([0.88, 0.88, 0.84]), _t([0.90, 0.74, 0.20])
        on_road, edge, centre, cross = self.ground_marks(p)
        col = torch.where(on_road[:, None], asphalt, grass)
        col = torch.where(edge[:, None] | cross[:, None], white, col)
        col = torch.where(centre[:, None], yellow, col)
        return col

    def labels(self, c2w) -> torch.Tensor:
        """What each pixel's ray (the one `render` shades) hits: (B, H, W) indices into PIXEL_LABELS."""
        o, d = generate_rays(c2w, self.K)
        o, d = o.reshape(-1, 3), d.reshape(-1, 3)
        t, sid, ib, _, _ = cast(self.boxes, o, d)
        lab = torch.full(sid.shape, PIXEL_LABELS.index("sky"), dtype=torch.long)
        box = sid >= 0
        lab[box] = PIXEL_LABELS.index("wall / building") + self.boxes.kind[ib[box]]  # wall, barrier, pole in KINDS order
        g = (sid == -1).nonzero()[:, 0]
        if len(g):
            on_road, edge, centre, cross = self.ground_marks(o[g] + t[g, None] * d[g])
            gl = torch.where(on_road, PIXEL_LABELS.index("asphalt"), PIXEL_LABELS.index("grass"))
            gl = torch.where(edge, PIXEL_LABELS.index("edge line"), gl)
            gl = torch.where(cross, PIXEL_LABELS.index("crosswalk"), gl)
            lab[g] = torch.where(centre, PIXEL_LABELS.index("centre line"), gl)
        return lab.reshape(len(c2w), self.K.height, self.K.width)

    def box_albedo(self, p, ib):
        bx = self.boxes
        q = p - bx.center[ib]
        c, s = bx.cos[ib], bx.sin[ib]
        lx, ly = c * q[:, 0] + s * q[:, 1], -s * q[:, 0] + c * q[:, 1]
        along = torch.where(bx.half[ib, 0] >= bx.half[ib, 1], lx, ly)
        z = p[:, 2]
        row = torch.floor(z / 0.1)
        brick_u = along + 0.125 * torch.remainder(row, 2)
        mortar = (torch.remainder(z, 0.1) < 0.015) | (torch.remainder(brick_u, 0.25) < 0.02)
        brick = _t([0.58, 0.27, 0.20]) * (0.8 + 0.4 * value_noise(brick_u * 4, row, 1.0, 3.0))[:, None]
        wall = torch.where(mortar[:, None], _t([0.72, 0.70, 0.66]).expand_as(brick), brick)
        stripe = torch.remainder(torch.floor(z / 0.1), 2) == 0
        barrier = torch.where(stripe[:, None], _t([0.95, 0.42, 0.08]).expand_as(brick), _t([0.92, 0.92, 0.90]).expand_as(brick))
        pole = _t([0.45, 0.46, 0.5]).expand_as(brick)
        k = bx.kind[ib][:, None]
        return torch.where(k == 0, wall, torch.where(k == 1, barrier, pole))

    def sky(self, d, L: Lighting):
        el = d[:, 2].clamp(0, 1)[:, None]
        col = _t(L.sky_horizon) + (_t(L.sky_zenith) - _t(L.sky_horizon)) * el.sqrt()
        sun = _t(L.sun_dir) / _t(L.sun_dir).norm()
        glow = (d @ sun).clamp(min=0) ** 64
        return col + glow[:, None] * _t(L.sun_color) * 0.6

    def shade_rays(self, o, d, lighting="day", exposure=1.0, noise_seed=None):
        L = LIGHTINGS[lighting] if isinstance(lighting, str) else lighting
        t, sid, ib, ax, dl = cast(self.boxes, o, d)
        n_rays = len(o)
        rgb = self.sky(d, L)
        surf = sid >= -1
        if surf.any():
            idx = surf.nonzero()[:, 0]
            p = o[idx] + t[idx, None] * d[idx]
            is_box = sid[idx] >= 0
            albedo = self.ground_albedo(p)
            normal = torch.tensor([0.0, 0.0, 1.0]).expand(len(idx), 3).clone()
            if is_box.any():
                bi = idx[is_box]
                albedo[is_box] = self.box_albedo(p[is_box], ib[bi])
                normal[is_box] = self.boxes.normal(ib[bi], ax[bi], dl[bi])
            sun = _t(L.sun_dir) / _t(L.sun_dir).norm()
            p_off = p + 1e-3 * normal
            lit = ~self.boxes.any_hit(p_off, sun.expand_as(p_off))  # hard shadows
            ndl = (normal @ sun).clamp(min=0) * lit.float()
            light = _t(L.ambient) * (0.75 + 0.25 * normal[:, 2:3]) + ndl[:, None] * _t(L.sun_color)
            if L.lamp_intensity > 0:
                for lamp in self.course.lamps:
                    v = _t(lamp) - p
                    dist2 = (v * v).sum(-1, keepdim=True)
                    ndl_l = ((normal * v).sum(-1, keepdim=True) / dist2.sqrt()).clamp(min=0)
                    light = light + L.lamp_intensity * _t(LAMP_COLOR) * ndl_l / (1.0 + dist2 / 1.2)
            col = albedo * light
            fog = 1 - torch.exp(-t[idx, None] / L.fog_dist)
            col = col + (_t(L.sky_horizon) - col) * fog
            rgb[idx] = col
        rgb = rgb * exposure
        if noise_seed is not None and L.noise_std > 0:
            g = torch.Generator().manual_seed(int(noise_seed))
            rgb = rgb + L.noise_std * torch.randn(n_rays, 3, generator=g)
        return rgb.clamp(0, 1)


class StandardSimRenderer(_Base):
    """Flat, untextured, single-lighting rendering of the same layout."""

    ROAD, GRASS, SKY = (0.45, 0.45, 0.45), (0.35, 0.6, 0.3), (0.55, 0.7, 0.95)
    BOX = ((0.75, 0.75, 0.75), (0.85, 0.25, 0.2), (0.5, 0.5, 0.5))
    LIGHT_DIR = (0.3, -0.2, 0.93)

    def shade_rays(self, o, d, **_):
        t, sid, ib, ax, dl = cast(self.boxes, o, d)
        rgb = _t(self.SKY).expand(len(o), 3).clone()
        surf = sid >= -1
        if surf.any():
            idx = surf.nonzero()[:, 0]
            p = o[idx] + t[idx, None] * d[idx]
            _, dd = self.course.frenet(p[:, 0].double(), p[:, 1].double())
            col = torch.where((dd.abs() <= self.course.half_width)[:, None], _t(self.ROAD), _t(self.GRASS))
            normal = torch.tensor([0.0, 0.0, 1.0]).expand(len(idx), 3).clone()
            is_box = sid[idx] >= 0
            if is_box.any():
                bi = idx[is_box]
                col[is_box] = _t(self.BOX)[self.boxes.kind[ib[bi]]]
                normal[is_box] = self.boxes.normal(ib[bi], ax[bi], dl[bi])
            ldir = _t(self.LIGHT_DIR) / _t(self.LIGHT_DIR).norm()
            rgb[idx] = col * (0.6 + 0.4 * (normal @ ldir).clamp(min=0))[:, None]
        return rgb.clamp(0, 1)

"""A grid NeRF with per-image appearance embeddings, in pure PyTorch.

Scene representation (DVGO-style, Sun et al. 2022): a dense density grid and a dense feature
grid over the scene box, read with trilinear interpolation; a small MLP maps
(grid feature, appearance embedding, view direction) to colour. Appearance embeddings are
per training image, as in NeRF-W (Martin-Brualla et al. 2021, eq. 4 there):
    c_i(x, d) = MLP(f(x), gamma(d), l_i^(a))
and a background MLP gives the sky/far colour from (gamma(d), l^(a)). Rendering is NeRF's
quadrature (Mildenhall et al. 2020, eq. 3):
    C(r) = sum_i T_i (1 - exp(-sigma_i delta_i)) c_i + T_{N+1} c_bg,  T_i = exp(-sum_{j<i} sigma_j delta_j)
Losses: photometric MSE, mip-NeRF 360's distortion loss (Barron et al. 2022, eq. 15) and a
total-variation prior on the grids.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class NeRFConfig:
    voxel: float = 0.15  # grid spacing (m)
    n_features: int = 8
    appearance_dim: int = 8
    hidden: int = 64
    n_samples: int = 48  # stratified samples per ray
    near: float = 0.05
    density_init: float = -4.0  # raw density; exp(-4) = softplus(-4) = 0.018 / m: an empty scene
    # sigma = exp(raw) (nerfacto's trunc_exp). Adam moves raw by at most ~lr per step: softplus needs
    # raw ~ 30 for an opaque surface (sigma ~ 30 / m), exp only raw ~ 3.4. In a 500-step run on the
    # default data the densest voxel reached 31 / m with exp and 3.3 / m with softplus.
    density_activation: str = "exp"  # exp | softplus
    # hierarchical (importance) sampling, NeRF sec. 5.2 with one field: a density-only pre-pass of n_coarse
    # samples (no colour MLP, no gradient) gives weights w_c; the main pass takes importance_frac of its
    # n_samples from the piecewise-constant pdf w_c (inverse transform sampling), the rest stratified.
    # n_coarse = 0: stratified sampling only.
    n_coarse: int = 0
    importance_frac: float = 0.75
    # multi-resolution features: a second, finer feature grid (0 = none) concatenated to the coarse one
    fine_voxel: float = 0.0
    fine_features: int = 4
    # factorised fine features (tri-plane, as in K-Planes / EG3D): three axis-aligned 2-D feature planes
    # xy, xz, yz with spacing plane_res (m; 0 = none), bilinear, concatenated to the grid features. The
    # detail of this scene (lane lines 6 cm wide, crosswalk stripes, brick) lies on the ground and on
    # vertical walls, which the planes resolve at a fraction of a fine 3-D grid's memory.
    plane_res: float = 0.0
    plane_features: int = 4
    # the scene box's floor is solid ground: a ray that leaves the box through its bottom face ends
    # there (its remaining transmittance takes the colour of its last sample) instead of seeing the
    # background MLP, which (direction only) explains the road and grass of these forward-looking views
    # on average. Default runs with and without it both end as a thin haze (no ground surface): README.
    opaque_floor: bool = True
    # the background MLP is the sky only: a ray that leaves the box through a side face ends there too (as on
    # the floor), and only rays leaving through the top see the background. Without it a wall pixel's colour
    # can come from the direction-only background MLP instead of density at the wall (benchmarks/nerf_walls.py).
    opaque_sides: bool = False
    # empty/occluded-space skipping for the colour MLP: samples with weight below this get no colour
    # (in training too; nerfacc's rule); 0 = colour every sample while training
    color_skip: float = 0.0


def direction_encoding(d: torch.Tensor, n_freqs: int = 2) -> torch.Tensor:
    """gamma(d): the direction and sin/cos at n_freqs octaves (NeRF's positional encoding)."""
    out = [d]
    for k in range(n_freqs):
        out += [torch.sin((2.0 ** k) * math.pi * d), torch.cos((2.0 ** k) * math.pi * d)]
    return torch.cat(out, -1)


def multilinear(grid: torch.Tensor, resolution, lo, hi, pts: torch.Tensor) -> torch.Tensor:
    """Bi-/trilinear interpolation of a vertex-major grid (prod(resolution), C), first axis fastest,
    at world points (N, D), D = len(resolution).

    Written as one gather (F.embedding) of the 2^D corners rather than F.grid_sample: on CPU the
    grid_sample backward is far slower than embedding's index_add backward."""
    D = len(resolution)
    res = torch.tensor(resolution, dtype=pts.dtype, device=pts.device)
    p = ((pts - lo) / (hi - lo) * (res - 1)).clamp(min=0)
    p = torch.minimum(p, res - 1)
    i0 = torch.minimum(p.floor(), res - 2).long()
    f = p - i0
    stride = [1]
    for r in resolution[:-1]:
        stride.append(stride[-1] * r)
    idx, w = [], []
    for corner in itertools.product((0, 1), repeat=D):
        k = sum((i0[:, a] + c) * stride[a] for a, c in enumerate(corner))
        wk = 1.0
        for a, c in enumerate(corner):
            wk = wk * (f[:, a] if c else 1 - f[:, a])
        idx.append(k)
        w.append(wk)
    return (F.embedding(torch.stack(idx, 1), grid) * torch.stack(w, 1)[..., None]).sum(1)


def trilinear(grid: torch.Tensor, resolution, lo, hi, pts: torch.Tensor) -> torch.Tensor:
    """Trilinear interpolation of a voxel-major grid (nz*ny*nx, C) at world points (N, 3)."""
    return multilinear(grid, resolution, lo, hi, pts)


PLANES = ((0, 1), (0, 2), (1, 2))  # xy (the ground's texture), xz, yz (walls)


class GridNeRF(nn.Module):
    def __init__(self, aabb, n_images: int, cfg: NeRFConfig = NeRFConfig()):
        super().__init__()
        self.cfg = cfg
        lo, hi = torch.tensor(aabb[0], dtype=torch.float32), torch.tensor(aabb[1], dtype=torch.float32)
        self.register_buffer("lo", lo)
        self.register_buffer("hi", hi)
        nx, ny, nz = (torch.ceil((hi - lo) / cfg.voxel).long() + 1).tolist()
        self.resolution = (nx, ny, nz)
        # voxel-major storage (V, C), V = nz * ny * nx with x fastest: gathers are row reads
        # column 0: raw density, columns 1..: colour features
        grid = torch.zeros(nz * ny * nx, 1 + cfg.n_features)
        grid[:, 0] = cfg.density_init
        self.grid = nn.Parameter(grid)
        n_feat = cfg.n_features
        if cfg.fine_voxel > 0:
            fx, fy, fz = (torch.ceil((hi - lo) / cfg.fine_voxel).long() + 1).tolist()
            self.fine_resolution = (fx, fy, fz)
            self.fine_grid = nn.Parameter(torch.zeros(fz * fy * fx, cfg.fine_features))
            n_feat += cfg.fine_features
        if cfg.plane_res > 0:
            pr = (torch.ceil((hi - lo) / cfg.plane_res).long() + 1).tolist()
            self.plane_resolution = [(pr[a], pr[b]) for a, b in PLANES]
            self.planes = nn.ParameterList([nn.Parameter(torch.zeros(r[0] * r[1], cfg.plane_features)) for r in self.plane_resolution])
            n_feat += 3 * cfg.plane_features
        self.appearance = nn.Embedding(n_images, cfg.appearance_dim)
        nn.init.normal_(self.appearance.weight, std=0.01)
        d_dim = 3 + 3 * 2 * 2
        h = cfg.hidden
        self.color_mlp = nn.Sequential(nn.Linear(n_feat + cfg.appearance_dim + d_dim, h), nn.ReLU(),
                                       nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 3))
        self.background_mlp = nn.Sequential(nn.Linear(d_dim + cfg.appearance_dim, h), nn.ReLU(), nn.Linear(h, 3))

    # ------------------------------------------------------------------ field
    def query(self, pts: torch.Tensor):
        """Raw density and features at world points (N, 3) by trilinear interpolation."""
        out = trilinear(self.grid, self.resolution, self.lo, self.hi, pts)
        return out[:, 0], out[:, 1:]

    def fine_query(self, pts: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        """The coarse features `feat` with the fine grid's and the planes' features appended."""
        out = [feat]
        if self.cfg.fine_voxel > 0:
            out.append(trilinear(self.fine_grid, self.fine_resolution, self.lo, self.hi, pts))
        if self.cfg.plane_res > 0:
            for (a, b), table, res in zip(PLANES, self.planes, self.plane_resolution):
                ax = [a, b]
                out.append(multilinear(table, res, self.lo[ax], self.hi[ax], pts[:, ax]))
        return torch.cat(out, -1) if len(out) > 1 else feat

    def query_density(self, pts: torch.Tensor):
        """Raw density only (the pre-pass of hierarchical sampling)."""
        return trilinear(self.grid[:, :1].contiguous(), self.resolution, self.lo, self.hi, pts)[:, 0]

    def grid_view(self, cols=slice(None)):
        """Columns of the (V, C) grid as a (1, C, nz, ny, nx) volume."""
        nx, ny, nz = self.resolution
        return self.grid[:, cols].t().reshape(1, -1, nz, ny, nx)

    def sigma(self, raw):
        if self.cfg.density_activation == "exp":
            return torch.exp(raw.clamp(max=12.0))  # truncated: no gradient above sigma = e^12 / m
        return F.softplus(raw)

    def density_volume(self) -> np.ndarray:
        """sigma on the grid vertices as an (nx, ny, nz) array (world x, y, z order)."""
        with torch.no_grad():
            return self.sigma(self.grid_view(slice(0, 1))[0, 0]).permute(2, 1, 0).cpu().numpy()

    def raw_level(self, level: float) -> float:
        """The raw density whose activation is `level` (1/m)."""
        return math.log(level) if self.cfg.density_activation == "exp" else math.log(math.expm1(level))

    def mesh(self, level: float, upsample: int = 1):
        """Marching cubes of the field's surface sigma = level: vertices (world) and faces. Run on the raw density,
        which is what the field interpolates trilinearly (sigma = exp(raw) is not linear between grid vertices:
        marching cubes on sigma put the surface up to ~0.1 m outside the field's own, tests/test_nerf.py)."""
        from .geometry import extract_mesh
        nx, ny, nz = self.resolution
        with torch.no_grad():
            raw = self.grid[:, 0].reshape(nz, ny, nx).permute(2, 1, 0).cpu().numpy()
        origin, spacing = self.grid_coords()
        return extract_mesh(raw, origin, spacing, self.raw_level(level), upsample)

    def grid_coords(self):
        """World coordinates of grid vertex (0, 0, 0) and the spacing per axis."""
        res = torch.tensor(self.resolution, dtype=torch.float32)
        return self.lo.cpu().numpy(), ((self.hi - self.lo) / (res - 1)).cpu().numpy()

    # ------------------------------------------------------------------ rays
    def ray_bounds(self, o, d):
        """Entry/exit distances of rays with the scene box (slab test)."""
        inv = 1.0 / torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)
        t1, t2 = (self.lo - o) * inv, (self.hi - o) * inv
        tn = torch.minimum(t1, t2).max(-1).values.clamp(min=self.cfg.near)
        tf = torch.maximum(t1, t2).min(-1).values
        tf = torch.maximum(tf, tn + 1e-4)
        return tn, tf

    def ends_on_box(self, o, d, tf=None):
        """Rays whose remaining transmittance ends on the box where they leave it (the colour of their last
        sample) rather than in the background MLP: through the floor (opaque_floor), through the four
        sides too (opaque_sides); never through the top. None when neither option is on."""
        if not (self.cfg.opaque_floor or self.cfg.opaque_sides):
            return None
        if tf is None:
            tf = self.ray_bounds(o, d)[1]
        z = o[:, 2] + tf * d[:, 2]
        if self.cfg.opaque_sides:  # every face but the top; the floor follows opaque_floor
            end = z < self.hi[2] - 1e-3
            return end if self.cfg.opaque_floor else end & (z > self.lo[2] + 1e-3)
        return z < self.lo[2] + 1e-3

    def sample_along_rays(self, o, d, tn, tf, N: int, perturb: bool):
        """Sample distances t (R, N), sorted, and the interval length delta each sample stands for."""
        u = torch.linspace(0, 1, N + 1, device=o.device)
        if self.cfg.n_coarse <= 0:
            edges = tn[:, None] + (tf - tn)[:, None] * u ** 2  # denser near the camera
            lo_e, hi_e = edges[:, :-1], edges[:, 1:]
            frac = torch.rand_like(lo_e) if perturb else torch.full_like(lo_e, 0.5)
            return lo_e + (hi_e - lo_e) * frac, hi_e - lo_e
        # hierarchical sampling from the field's own density (one field, no separate coarse network)
        with torch.no_grad():
            M = self.cfg.n_coarse
            uc = torch.linspace(0, 1, M + 1, device=o.device)
            edges = tn[:, None] + (tf - tn)[:, None] * uc ** 2
            mid = 0.5 * (edges[:, 1:] + edges[:, :-1])
            sig = self.sigma(self.query_density((o[:, None] + mid[..., None] * d[:, None]).reshape(-1, 3))).view(-1, M)
            alpha = 1 - torch.exp(-sig * (edges[:, 1:] - edges[:, :-1]))
            w_c = alpha * torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha + 1e-10], -1), -1)[:, :-1]
            n_imp = int(round(N * self.cfg.importance_frac))
            n_uni = N - n_imp
            t_imp = sample_pdf(edges, w_c, n_imp, perturb)
            ue = torch.linspace(0, 1, n_uni + 1, device=o.device)
            e_u = tn[:, None] + (tf - tn)[:, None] * ue ** 2
            frac = torch.rand_like(e_u[:, 1:]) if perturb else torch.full_like(e_u[:, 1:], 0.5)
            t_uni = e_u[:, :-1] + (e_u[:, 1:] - e_u[:, :-1]) * frac
            t = torch.sort(torch.cat([t_imp, t_uni], -1), -1).values
            # each sample stands for the interval between the midpoints to its neighbours
            bounds = torch.cat([tn[:, None], 0.5 * (t[:, 1:] + t[:, :-1]), tf[:, None]], -1)
            return t, (bounds[:, 1:] - bounds[:, :-1]).clamp_min(1e-6)

    def render_rays(self, o, d, app, perturb: bool = False, n_samples: int | None = None):
        """Colour, depth, accumulated opacity and weights of rays (N, 3) with appearance (N, A)."""
        N = n_samples or self.cfg.n_samples
        tn, tf = self.ray_bounds(o, d)
        t, delta = self.sample_along_rays(o, d, tn, tf, N, perturb)
        pts = o[:, None] + t[..., None] * d[:, None]
        raw, feat = self.query(pts.reshape(-1, 3))
        sigma = self.sigma(raw).view(-1, N)
        alpha = 1 - torch.exp(-sigma * delta)  # eq. 3
        trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha + 1e-10], -1), -1)
        w = trans[:, :-1] * alpha
        denc = direction_encoding(d)
        end = self.ends_on_box(o, d, tf)
        skip = self.cfg.color_skip if torch.is_grad_enabled() else max(self.cfg.color_skip, 1e-4)
        if skip <= 0:
            feat = self.fine_query(pts.reshape(-1, 3), feat)
            x = torch.cat([feat, app.repeat_interleave(N, 0), denc.repeat_interleave(N, 0)], -1)
            rgb = torch.sigmoid(self.color_mlp(x)).view(-1, N, 3)
        else:  # features and colour only at the samples that contribute (empty / occluded space skipped)
            keep = w.detach() > skip
            if end is not None:
                keep[:, -1] |= end  # the box face's colour is the last sample's
            keep = keep.view(-1)
            ray = torch.arange(len(o), device=o.device).repeat_interleave(N)[keep]
            x = torch.cat([self.fine_query(pts.reshape(-1, 3)[keep], feat[keep]), app[ray], denc[ray]], -1)
            rgb = torch.zeros(len(keep), 3, device=o.device, dtype=feat.dtype).index_put((keep.nonzero()[:, 0],), torch.sigmoid(self.color_mlp(x)))
            rgb = rgb.view(-1, N, 3)
        bg = torch.sigmoid(self.background_mlp(torch.cat([denc, app], -1)))
        if end is not None:
            bg = torch.where(end[:, None], rgb[:, -1], bg)
        acc = w.sum(-1)
        color = (w[..., None] * rgb).sum(1) + (1 - acc)[:, None] * bg
        depth = (w * t).sum(-1) + (1 - acc) * tf
        return {"rgb": color, "depth": depth, "acc": acc, "weights": w, "t": t, "delta": delta, "tf": tf}


def sample_pdf(edges: torch.Tensor, weights: torch.Tensor, n: int, perturb: bool) -> torch.Tensor:
    """Inverse transform sampling of a piecewise-constant pdf over bins `edges` (R, M+1) with
    `weights` (R, M) (NeRF sec. 5.2, eq. 5): n samples per ray, stratified in the CDF when perturb."""
    pdf = weights + 1e-5
    pdf = pdf / pdf.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1).clamp(max=1.0)
    k = torch.arange(n, device=edges.device, dtype=edges.dtype)
    u = (k + (torch.rand(len(edges), n, device=edges.device) if perturb else 0.5)) / n
    u = u.expand(len(edges), n).contiguous()
    idx = torch.searchsorted(cdf, u, right=True).clamp(1, pdf.shape[-1])
    c0, c1 = cdf.gather(1, idx - 1), cdf.gather(1, idx)
    e0, e1 = edges.gather(1, idx - 1), edges.gather(1, idx)
    return e0 + (u - c0) / (c1 - c0).clamp_min(1e-10) * (e1 - e0)


def distortion_loss(w, t, delta):
    """mip-NeRF 360 eq. 15 in O(N): sum_ij w_i w_j |t_i - t_j| + 1/3 sum_i w_i^2 delta_i."""
    wt = w * t
    w_cum = torch.cumsum(w, -1) - w  # sum_{j<i} w_j
    wt_cum = torch.cumsum(wt, -1) - wt
    bi = 2 * (w * (t * w_cum - wt_cum)).sum(-1)
    uni = (w ** 2 * delta).sum(-1) / 3
    return (bi + uni).mean()


def line_of_sight_depth_loss(w, t, acc, tf, D, sigma: float):
    """Sparse depth prior in the spirit of DS-NeRF (Deng et al. 2022) / Urban Radiance Fields' line-of-sight
    loss: the ray's termination distribution, its weights w_i at t_i plus the rest 1 - acc at the exit tf
    (box face or background), should sit at the known depth D:
        L = sum_i w_i min(((t_i - D) / sigma)^2, 1) + (1 - acc) min(((tf - D) / sigma)^2, 1),
    i.e. the share of the ray's termination that lies farther than ~sigma from D (robust to outliers).
    Rays ending on the box at D (the ground on the opaque floor) cost nothing."""
    cost = lambda x: torch.clamp(((x - D[:, None]) / sigma) ** 2, max=1.0)
    return ((w * cost(t)).sum(-1) + (1 - acc) * cost(tf[:, None])[:, 0]).mean()


def opacity_entropy(acc, eps: float = 1e-4):
    """Mean binary entropy of the rays' accumulated opacity (0 for empty or opaque rays)."""
    a = acc.clamp(eps, 1 - eps)
    return -(a * torch.log(a) + (1 - a) * torch.log(1 - a)).mean()


def total_variation(grid):
    """Mean squared difference of neighbouring voxels (DVGO's TV prior)."""
    return sum(((grid.diff(dim=k)) ** 2).mean() for k in (2, 3, 4))


@dataclass
class TrainConfig:
    iters: int = 800
    batch_rays: int = 1024
    lr_grid: float = 0.1
    lr_mlp: float = 2e-3
    lr_decay: float = 0.1  # final lr / initial lr
    w_distortion: float = 1e-2
    w_tv_density: float = 1e-2
    w_tv_features: float = 1e-5
    # opacity entropy of each ray inside the box, -(a log a + (1 - a) log(1 - a)), a = acc: pushes a ray to be
    # either empty or opaque (a half-transparent wall lets what lies behind it explain its colour); 0 = off
    w_opacity_entropy: float = 0.0
    # sparse depth prior (DS-NeRF / nerfstudio's depth-nerfacto with COLMAP's sparse points, `ns-process-data
    # --use-sfm-depth`): on the rays with a known depth D, line_of_sight_depth_loss; 0 = off
    w_depth: float = 0.0
    depth_sigma: float = 0.25  # (m) the spread of the weights around D that costs nothing


class RayData:
    """All training pixels as rays: origins, directions, colours, image index (and, where known, the depth
    along the ray, NaN elsewhere: `depth` (N, H, W), e.g. COLMAP's sparse points projected into each view)."""

    def __init__(self, images, c2w, K, depth=None):
        from .camera import generate_rays
        o, d = generate_rays(c2w, K)
        self.o, self.d = o.reshape(-1, 3), d.reshape(-1, 3)
        self.rgb = images.reshape(-1, 3).float()
        n, h, w = images.shape[:3]
        self.img = torch.arange(n).repeat_interleave(h * w)
        self.depth = None if depth is None else torch.as_tensor(depth, dtype=torch.float32).reshape(-1)

    def __len__(self):
        return len(self.o)

    def sample(self, n, gen):
        """(o, d, rgb, img) of n random pixels, with their depth (NaN: unknown) appended when there is one."""
        i = torch.randint(0, len(self), (n,), generator=gen)
        batch = self.o[i], self.d[i], self.rgb[i], self.img[i]
        return batch if self.depth is None else batch + (self.depth[i],)


def make_optimizer(model: GridNeRF, tc: TrainConfig):
    return torch.optim.Adam([
        {"params": [model.grid] + ([model.fine_grid] if model.cfg.fine_voxel > 0 else [])
         + (list(model.planes) if model.cfg.plane_res > 0 else []), "lr": tc.lr_grid},
        {"params": list(model.color_mlp.parameters()) + list(model.background_mlp.parameters()) + list(model.appearance.parameters()), "lr": tc.lr_mlp},
    ], betas=(0.9, 0.99))


def train_step(model: GridNeRF, opt, batch, tc: TrainConfig, step: int):
    """One optimisation step; returns the loss terms as floats."""
    o, d, rgb, img = batch[:4]
    frac = step / max(tc.iters, 1)
    for g, base in zip(opt.param_groups, (tc.lr_grid, tc.lr_mlp)):
        g["lr"] = base * tc.lr_decay ** frac
    out = model.render_rays(o, d, model.appearance(img), perturb=True)
    mse = F.mse_loss(out["rgb"], rgb)
    dist = distortion_loss(out["weights"], out["t"], out["delta"])
    vol = model.grid_view()
    tv = total_variation(vol[:, :1]) * tc.w_tv_density + total_variation(vol[:, 1:]) * tc.w_tv_features
    loss = mse + tc.w_distortion * dist + tv
    if tc.w_opacity_entropy > 0:
        loss = loss + tc.w_opacity_entropy * opacity_entropy(out["acc"])
    terms = {}
    if tc.w_depth > 0 and len(batch) > 4:  # the rays of this batch with a known depth (maybe none)
        k = torch.isfinite(batch[4])
        dl = line_of_sight_depth_loss(out["weights"][k], out["t"][k], out["acc"][k], out["tf"][k], batch[4][k], tc.depth_sigma) \
            if k.any() else torch.zeros((), device=o.device)
        loss = loss + tc.w_depth * dl
        terms["depth"] = dl.item()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.item(), "mse": mse.item(), "psnr": -10 * math.log10(max(mse.item(), 1e-10)), "distortion": dist.item(), **terms}


@torch.no_grad()
def render_image(model: GridNeRF, c2w, K, app_vec, chunk: int = 8192, n_samples: int | None = None):
    """Render (B, H, W, 3) images for poses (B, 4, 4) with appearance vector(s) (A,) or (B, A)."""
    from .camera import generate_rays
    o, d = generate_rays(c2w, K)
    B = o.shape[0]
    app_vec = torch.as_tensor(app_vec, dtype=torch.float32)
    if app_vec.dim() == 1:
        app_vec = app_vec[None].expand(B, -1)
    app = app_vec[:, None, None, :].expand(*o.shape[:-1], app_vec.shape[-1]).reshape(-1, app_vec.shape[-1])
    of, df = o.reshape(-1, 3), d.reshape(-1, 3)
    rgb = torch.cat([model.render_rays(of[i:i + chunk], df[i:i + chunk], app[i:i + chunk], n_samples=n_samples)["rgb"]
                     for i in range(0, len(of), chunk)])
    return rgb.view(*o.shape[:-1], 3)


def lighting_embeddings(model: GridNeRF, labels: list[str]) -> dict[str, torch.Tensor]:
    """Mean appearance embedding of the training images of each lighting (day, dusk, night...)."""
    W = model.appearance.weight.detach()
    out = {}
    for name in sorted(set(labels)):
        idx = torch.tensor([i for i, l in enumerate(labels) if l == name])
        out[name] = W[idx].mean(0)
    return out


def interpolate_appearance(a: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    """Linear interpolation between two appearance embeddings (a lighting transition)."""
    return (1 - alpha) * a + alpha * b


def psnr(a, b) -> float:
    mse = torch.mean((torch.as_tensor(a) - torch.as_tensor(b)) ** 2).item()
    return -10 * math.log10(max(mse, 1e-10))


def ssim(a, b) -> float:
    from skimage.metrics import structural_similarity
    return float(structural_similarity(np.asarray(a), np.asarray(b), channel_axis=-1, data_range=1.0))


def heldout_quality(model: GridNeRF, c2w, K, images, labels: list[str], app: dict[str, torch.Tensor]):
    """Held-out views, one lighting at a time: render them with that lighting's appearance embedding (the
    first one in `app` if the lighting has none) and compare with the ground truth. Returns
    ({lighting: {"psnr", "ssim"}} as means over the views, {lighting: (view indices, renders)})."""
    quality, renders = {}, {}
    for name in sorted(set(labels)):
        idx = [i for i, l in enumerate(labels) if l == name]
        r = render_image(model, c2w[idx], K, app.get(name, next(iter(app.values()))))
        quality[name] = {"psnr": float(np.mean([psnr(r[k], images[i]) for k, i in enumerate(idx)])),
                         "ssim": float(np.mean([ssim(r[k].numpy(), np.asarray(images[i])) for k, i in enumerate(idx)]))}
        renders[name] = (idx, r)
    return quality, renders


def save_checkpoint(path, model: GridNeRF, opt, step: int, extra: dict | None = None):
    torch.save({"model": model.state_dict(), "opt": opt.state_dict() if opt is not None else None, "step": step,
                "cfg": model.cfg.__dict__, "aabb": (model.lo.tolist(), model.hi.tolist()),
                "n_images": model.appearance.num_embeddings, "extra": extra or {}}, path)


def load_checkpoint(path, with_opt_cfg: TrainConfig | None = None):
    ck = torch.load(path, map_location="cpu", weights_only=False)
    # checkpoints written before exp / the opaque floor were the defaults
    cfg = {"density_activation": "softplus", "opaque_floor": False, **ck["cfg"]}
    model = GridNeRF(ck["aabb"], ck["n_images"], NeRFConfig(**cfg))
    model.load_state_dict(ck["model"])
    opt = None
    if with_opt_cfg is not None:
        opt = make_optimizer(model, with_opt_cfg)
        if ck["opt"] is not None:
            opt.load_state_dict(ck["opt"])
    return model, opt, ck["step"], ck["extra"]

"""The grid NeRF: interpolation, rendering quadrature, losses, a short run learns, checkpoints."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from driveenv_nerf import nerf as NR
from driveenv_nerf.camera import Intrinsics, generate_rays
from driveenv_nerf.capture import capture

AABB = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))


def small_model(n_images=2, voxel=0.25, **kw):
    torch.manual_seed(0)
    return NR.GridNeRF(AABB, n_images, NR.NeRFConfig(voxel=voxel, n_features=4, appearance_dim=4, hidden=16, n_samples=32, **kw))


def test_trilinear_query_matches_grid_sample():
    m = small_model()
    with torch.no_grad():
        m.grid.normal_()
    pts = torch.rand(200, 3) * 2 - 1
    raw, feat = m.query(pts)
    ref = F.grid_sample(m.grid_view(), pts.view(1, -1, 1, 1, 3), align_corners=True).view(m.grid.shape[1], -1).t()
    assert torch.allclose(raw, ref[:, 0], atol=1e-5) and torch.allclose(feat, ref[:, 1:], atol=1e-5)


def test_query_gradient_matches_finite_differences():
    m = small_model()
    g = torch.randn_like(m.grid, dtype=torch.float64).requires_grad_(True)
    pts = (torch.rand(5, 3) * 1.6 - 0.8).double()
    f = lambda grid: NR.trilinear(grid, m.resolution, m.lo.double(), m.hi.double(), pts)
    assert torch.autograd.gradcheck(f, (g,), eps=1e-6, atol=1e-6, fast_mode=True)


def test_opaque_slab_renders_its_colour_and_depth():
    m = small_model(voxel=0.1)
    nx, ny, nz = m.resolution
    with torch.no_grad():
        vol = m.grid_view()  # view on the parameter
        m.grid[:, 0] = -20.0
        g = m.grid.view(nz, ny, nx, -1)
        g[:, :, 15:, 0] = 60.0  # x >= 0.5: opaque
    o = torch.tensor([[-0.9, 0.0, 0.0], [-0.9, 0.3, 0.2]])
    d = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    out = m.render_rays(o, d, torch.zeros(2, 4))
    assert torch.allclose(out["acc"], torch.ones(2), atol=1e-3)
    assert torch.allclose(out["depth"], torch.full((2,), 1.35), atol=0.08)  # surface ~ x = 0.45
    assert (out["weights"].sum(-1) <= 1 + 1e-5).all()
    empty = m.render_rays(torch.tensor([[-0.9, 0.0, 0.0]]), torch.tensor([[-1.0, 0.0, 0.0]]), torch.zeros(1, 4))
    assert empty["acc"].item() < 1e-3  # looking away: background only


def test_distortion_loss_matches_quadratic_form():
    torch.manual_seed(0)
    w = torch.rand(3, 10)
    t = torch.sort(torch.rand(3, 10) * 5, -1).values
    delta = torch.rand(3, 10) * 0.3
    brute = (w[:, :, None] * w[:, None, :] * (t[:, :, None] - t[:, None, :]).abs()).sum((1, 2)) + (w ** 2 * delta).sum(-1) / 3
    assert torch.allclose(NR.distortion_loss(w, t, delta), brute.mean(), atol=1e-5)


def test_short_run_lowers_loss_and_checkpoint_roundtrip(course, tmp_path):
    K = Intrinsics.from_fov(16, 12, 90)
    imgs, poses, labels = capture(course, K, ["day", "night"], 6, seed=0)
    torch.manual_seed(0)
    model = NR.GridNeRF(course.aabb, len(imgs), NR.NeRFConfig(voxel=0.4, n_features=4, appearance_dim=4, hidden=32, n_samples=24))
    tc = NR.TrainConfig(iters=80, batch_rays=256)
    opt = NR.make_optimizer(model, tc)
    rays = NR.RayData(imgs, torch.as_tensor(poses, dtype=torch.float32), K)
    gen = torch.Generator().manual_seed(0)
    losses = [NR.train_step(model, opt, rays.sample(tc.batch_rays, gen), tc, i)["mse"] for i in range(tc.iters)]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    app = NR.lighting_embeddings(model, labels)
    assert set(app) == {"day", "night"}
    c2w = torch.as_tensor(poses[:1], dtype=torch.float32)
    r_day, r_night = NR.render_image(model, c2w, K, app["day"]), NR.render_image(model, c2w, K, app["night"])
    assert r_night.mean() < r_day.mean()  # the night embedding renders a darker scene
    mid = NR.render_image(model, c2w, K, NR.interpolate_appearance(app["day"], app["night"], 0.5))
    assert r_night.mean() - 1e-3 < mid.mean() < r_day.mean() + 1e-3
    NR.save_checkpoint(tmp_path / "n.pt", model, opt, 80)
    m2, opt2, step, _ = NR.load_checkpoint(tmp_path / "n.pt", tc)
    assert step == 80 and opt2 is not None
    assert torch.allclose(NR.render_image(m2, c2w, K, app["day"]), r_day)


def test_density_activations_and_old_checkpoints(tmp_path):
    m = small_model()
    raw = torch.tensor([-4.0, 0.0, 3.0, 50.0])
    assert m.cfg.density_activation == "exp" and torch.allclose(m.sigma(raw)[:3], raw[:3].exp())
    assert m.sigma(raw)[3] == math.exp(12.0)  # truncated
    NR.save_checkpoint(tmp_path / "old.pt", m, None, 0)
    ck = torch.load(tmp_path / "old.pt", weights_only=False)
    del ck["cfg"]["density_activation"]  # a checkpoint from before the option existed
    torch.save(ck, tmp_path / "old.pt")
    m2, _, _, _ = NR.load_checkpoint(tmp_path / "old.pt")
    assert m2.cfg.density_activation == "softplus" and torch.allclose(m2.sigma(raw), F.softplus(raw))


def test_sample_pdf_follows_the_weights():
    edges = torch.linspace(0, 4, 5)[None].expand(2000, 5).contiguous()
    w = torch.tensor([[0.1, 0.0, 0.6, 0.3]]).expand(2000, 4)
    t = NR.sample_pdf(edges, w, 8, perturb=True)
    frac = torch.stack([((t >= k) & (t < k + 1)).float().mean() for k in range(4)])
    assert torch.allclose(frac, torch.tensor([0.1, 0.0, 0.6, 0.3]), atol=0.02)


def test_bilinear_plane_matches_grid_sample():
    torch.manual_seed(0)
    table = torch.randn(7 * 5, 3)  # a 7 (x) by 5 (y) plane, x fastest
    lo, hi = torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0])
    pts = torch.rand(100, 2) * 2 - 1
    ref = F.grid_sample(table.t().reshape(1, 3, 5, 7), pts.view(1, -1, 1, 2), align_corners=True).view(3, -1).t()
    assert torch.allclose(NR.multilinear(table, (7, 5), lo, hi, pts), ref, atol=1e-5)


@pytest.mark.parametrize("kw", [{"n_coarse": 32}, {"plane_res": 0.2, "color_skip": 1e-4}])
def test_hierarchical_sampling_and_planes_render_the_slab(kw):
    m = small_model(voxel=0.1, **kw)
    nx, ny, nz = m.resolution
    with torch.no_grad():
        m.grid[:, 0] = -20.0
        m.grid.view(nz, ny, nx, -1)[:, :, 15:, 0] = 60.0  # x >= 0.5: opaque
    out = m.render_rays(torch.tensor([[-0.9, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0]]), torch.zeros(1, 4))
    assert out["acc"].item() > 0.999 and abs(out["depth"].item() - 1.35) < 0.08
    if kw.get("n_coarse"):
        assert (out["t"] > 1.2).float().mean() > 0.5  # most samples went to the surface


def test_opaque_floor_replaces_the_background():
    rays = (torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 0.5]]), torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]]))
    outs = []
    for floor in (True, False):
        m = small_model(opaque_floor=floor)
        with torch.no_grad():
            m.grid[:, 0] = -30.0  # empty
            m.grid[:, 1:] = 1.0
        outs.append(m.render_rays(*rays, torch.zeros(2, 4))["rgb"])
        with torch.no_grad():  # inference skips empty samples' colour, but never the floor's
            assert torch.allclose(m.render_rays(*rays, torch.zeros(2, 4))["rgb"], outs[-1], atol=1e-6)
    last = torch.sigmoid(small_model().color_mlp(torch.cat([torch.ones(1, 4), torch.zeros(1, 4), NR.direction_encoding(rays[1][:1])], -1)))
    assert torch.allclose(outs[0][0], last[0], atol=1e-5)  # down: ends on the floor, the field's colour there
    assert not torch.allclose(outs[1][0], outs[0][0], atol=1e-3)  # without it: the background MLP
    assert torch.allclose(outs[0][1], outs[1][1])  # up: the background either way


def test_heldout_quality_groups_by_lighting_and_falls_back_to_the_first_embedding():
    m = small_model(n_images=3).eval()
    K = Intrinsics.from_fov(12, 8, 90.0)
    c2w = torch.eye(4).repeat(3, 1, 1)
    c2w[:, 0, 3] = torch.tensor([-0.5, 0.0, 0.5])
    app = {"day": torch.randn(4)}  # "night" has no embedding of its own: the first one is used
    with torch.no_grad():
        r = NR.render_image(m, c2w, K, app["day"])
    gt = r.clone()
    gt[2] = gt[2] + 0.1  # one night view off by exactly 0.1 everywhere: PSNR 20 dB
    with torch.no_grad():
        q, renders = NR.heldout_quality(m, c2w, K, gt, ["day", "night", "night"], app)
    assert list(q) == ["day", "night"] and renders["night"][0] == [1, 2]
    assert q["day"]["psnr"] == pytest.approx(100.0) and q["day"]["ssim"] == pytest.approx(1.0)
    assert q["night"]["psnr"] == pytest.approx((100.0 + 20.0) / 2, abs=1e-3)


def test_opaque_sides_leave_the_background_to_the_sky():
    # from the centre: +x leaves through a side, -z through the floor, +z and up-steep through the top
    o = torch.zeros(4, 3)
    d = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [0.3, 0.0, 1.0]])
    d = d / d.norm(dim=-1, keepdim=True)
    out = {}
    for sides in (False, True):
        m = small_model(opaque_sides=sides)
        with torch.no_grad():
            m.grid[:, 0] = -30.0  # empty
        out[sides] = m.render_rays(o, d, torch.zeros(4, 4))["rgb"]
        assert m.ends_on_box(o, d).tolist() == [sides, True, False, False]
    assert not torch.allclose(out[True][0], out[False][0], atol=1e-3)  # side: the field's colour, not the background
    assert torch.allclose(out[True][1:], out[False][1:])  # floor and top: unchanged
    assert small_model(opaque_sides=True, opaque_floor=False).ends_on_box(o, d).tolist() == [True, False, False, False]


def test_opacity_entropy_is_zero_for_empty_or_opaque_rays():
    assert NR.opacity_entropy(torch.tensor([0.0, 1.0])).item() < 2e-3
    assert NR.opacity_entropy(torch.tensor([0.5])).item() == pytest.approx(math.log(2), abs=1e-6)


def test_line_of_sight_depth_loss_prefers_termination_at_the_known_depth():
    t = torch.linspace(0.1, 1.9, 10)[None]
    D, tf = torch.tensor([1.1]), torch.tensor([2.0])
    at = torch.zeros(1, 10)
    at[0, 5] = 1.0  # all weight at t = 1.1
    before = torch.zeros(1, 10)
    before[0, 1] = 1.0  # all at t = 0.3
    f = lambda w: NR.line_of_sight_depth_loss(w, t, w.sum(-1), tf, D, 0.25).item()
    assert f(at) == pytest.approx(0.0) and f(before) == pytest.approx(1.0)
    assert f(torch.zeros(1, 10)) == pytest.approx(1.0)  # nothing in the field: ends on the box at 2.0, far from D
    assert NR.line_of_sight_depth_loss(torch.zeros(1, 10), t, torch.zeros(1), torch.tensor([1.1]), D, 0.25).item() == 0.0


def test_sparse_depth_hits_the_ground_at_its_distance(course):
    from driveenv_nerf.capture import pose_c2w, sparse_depth
    K = Intrinsics.from_fov(16, 12, 90)
    c2w = pose_c2w(0.0, 0.0, 1.0, 0.0, 89.0)[None]  # straight down from 1 m over the road
    D = sparse_depth(course, c2w, K, 0.5, seed=0)
    known = torch.isfinite(D)
    assert 0.3 < known.float().mean() < 0.7
    o, d = generate_rays(torch.as_tensor(c2w, dtype=torch.float32), K)
    assert torch.allclose((o + D[..., None] * d)[known][:, 2], torch.zeros(int(known.sum())), atol=1e-4)


def test_mesh_lies_on_the_fields_surface():
    """Every marching-cubes vertex of model.mesh(level) has sigma = level in the field itself. The field interpolates
    the raw density (sigma = exp(raw)); marching cubes on sigma (the rule before) put the vertices where sigma is
    ~2x the level, the surface outward by a good part of a voxel: fatter obstacles in the NeRF world."""
    model = small_model(voxel=0.2)
    nx, ny, nz = model.resolution
    o, sp = model.grid_coords()
    Z, Y, X = np.meshgrid(*(o[a] + sp[a] * np.arange(n) for a, n in ((2, nz), (1, ny), (0, nx))), indexing="ij")
    raw = 4.0 - 6.0 * np.sqrt(X ** 2 + Y ** 2 + Z ** 2) + 0.5 * np.sin(5 * X) * np.cos(4 * Y)  # a dented ball
    with torch.no_grad():
        model.grid[:, 0] = torch.as_tensor(raw.ravel(), dtype=torch.float32)
    verts, faces = model.mesh(2.0)
    assert len(faces) > 100
    with torch.no_grad():
        sig = model.sigma(model.query(torch.as_tensor(verts, dtype=torch.float32))[0]).numpy()
    assert np.allclose(sig, 2.0, rtol=1e-3), (sig.min(), sig.max())

"""benchmarks/obs_divergence.py: the image transforms and the divergence search it reports with."""
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from obs_divergence import (apply_colour, band_table, composite, divergence, fit_blur, fit_colour, gaussian_blur, group_mask,  # noqa: E402
                            read_steps, sharpness)
from driveenv_nerf.renderer import PIXEL_LABELS  # noqa: E402


def test_colour_fit_recovers_an_affine_map_and_blur_fit_its_sigma():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, (4, 24, 32, 3))
    coef = np.array([[0.8, 0.05], [1.1, -0.02], [0.6, 0.2]])
    assert np.allclose(fit_colour(img, apply_colour(img, coef)), coef, atol=1e-9)
    sigma, err = fit_blur(img, gaussian_blur(img, 1.25))
    assert sigma == 1.25 and err[1.25] < 1e-6 < err[0.0]
    # the blur keeps a constant image, keeps the mean, makes it less sharp; sigma 0 leaves it alone
    flat = np.full((1, 8, 8, 3), 0.3)
    assert np.allclose(gaussian_blur(flat, 2.0), 0.3, atol=1e-6)
    assert abs(gaussian_blur(img, 1.0).mean() - img.mean()) < 0.01
    assert sharpness(gaussian_blur(img, 1.0)) < 0.5 * sharpness(img)
    assert np.array_equal(gaussian_blur(img, 0.0), img)


def test_composite_takes_the_group_pixels_from_the_donor():
    lab = np.array([[[PIXEL_LABELS.index("sky"), PIXEL_LABELS.index("edge line")],
                     [PIXEL_LABELS.index("centre line"), PIXEL_LABELS.index("barrier")]]])
    base, donor = np.zeros((1, 2, 2, 3)), np.ones((1, 2, 2, 3))
    out = composite(base, donor, group_mask(lab, "marks"))
    assert out[0, :, :, 0].tolist() == [[0, 1], [1, 0]]
    assert composite(base, donor, group_mask(lab, "boxes"))[0, :, :, 1].tolist() == [[0, 0], [0, 1]]


def test_divergence_finds_the_first_step_past_the_tolerances(tmp_path):
    path = tmp_path / "steps.csv"
    fields = ["drive_world", "episode", "t", "x", "y", "yaw", "s", "d", "action_own", "action_other", "end"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for t in range(6):  # episode 0: the NeRF-driven car drifts right by 0.04 m a step; its actions differ at t = 4
            base = {"episode": 0, "t": t, "x": 0, "y": 0, "yaw": 0, "s": 0.25 * t}
            w.writerow({**base, "drive_world": "nerf", "d": -0.04 * t, "action_own": -0.5 if t == 4 else 0.0,
                        "action_other": 0.0, "end": "offroad" if t == 5 else ""})
            w.writerow({**base, "drive_world": "real", "d": 0.0, "action_own": 0.0, "action_other": 0.0, "end": "success" if t == 5 else ""})
    steps = read_steps(path)
    (r,) = divergence(steps, d_tol=0.1, a_tol=0.3)
    assert (r["t_d"], r["t_a"], r["end_nerf"], r["end_real"]) == (3, 4, "offroad", "success")
    assert r["s_d"] == 0.75 and r["s_a"] == 1.0
    (r,) = divergence(steps, d_tol=0.5, a_tol=0.6)
    assert r["t_d"] is None and r["t_a"] is None
    lo, hi = band_table(steps, [0.0, 0.6, 2.0])  # s = 0, 0.25, 0.5 and 0.75, 1.0, 1.25
    assert lo["n_nerf"] == lo["n_real"] == 3 and np.isclose(lo["d_nerf"], -0.04) and lo["d_real"] == 0.0
    assert lo["gap"] == 0.0 and np.isclose(hi["gap"], -0.5 / 3) and np.isclose(hi["gap_negative"], 1 / 3)

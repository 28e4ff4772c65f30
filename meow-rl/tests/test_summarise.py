"""summarise.py: per-seed rows and mean +- std over run directories; refuses mixed configs and repeated seeds."""
import csv
import json

import numpy as np
import pytest

import summarise

FIELDS = ["algo", "seed", "env_steps", "eval_return", "eval_return_stochastic", "train_return", "loss", "q", "wall_s"]


def _run(tmp_path, name, seed, det, alpha=0.25):
    d = tmp_path / name
    d.mkdir()
    json.dump({"name": "c", "env_id": "e", "backend": "jax", "seeds": [seed], "out_dir": str(tmp_path),
               "meow": {"alpha": alpha}}, open(d / "config.json", "w"))
    with open(d / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for i, r in enumerate(det):
            w.writerow(dict(algo="meow", seed=seed, env_steps=100 * (i + 1), eval_return=r, eval_return_stochastic=r - 1,
                            train_return=0, loss=0, q=0, wall_s=10.0 * (i + 1)))
    return str(d)


def test_per_seed_values_and_mean_std(tmp_path):
    a = _run(tmp_path, "a", 1, [5.0, 50.0, 10.0, 50.0])   # reaches 50 at 200, stays from 400
    b = _run(tmp_path, "b", 2, [7.0, 9.0, 50.0, 50.0])    # reaches and stays from 300
    shared, curves = summarise.load([a, b])
    assert shared["name"] == "c" and set(curves) == {("meow", 1), ("meow", 2)}
    r1 = summarise.seed_row(curves[("meow", 1)], at=(200,), reach=50)
    assert r1["at 200"] == (50.0, 49.0) and r1["end (400)"] == (50.0, 49.0)
    assert r1["first >= 50"] == 200 and r1["stays >= 50 from"] == 400
    assert r1["training wall (s)"] == 40.0 and r1["env steps/s"] == 10.0
    text = summarise.main([a, b, "--at", "100", "--reach", "50"])
    mean_row = [l for l in text.splitlines() if l.startswith("| mean")][0]
    assert f"{np.mean([5, 7]):.1f} +- {np.std([5, 7]):.1f}" in mean_row   # at 100: 6.0 +- 1.0
    assert "250 +- 50" in mean_row and "350 +- 50" in mean_row            # first / stays
    never = summarise.seed_row(curves[("meow", 2)], at=(), reach=1000)
    assert never["first >= 1000"] is None and "never" in summarise._mean_cell([None, 3])


def test_rejects_mixed_configs_repeated_seeds_missing_step(tmp_path):
    a = _run(tmp_path, "a", 1, [1.0, 2.0])
    with pytest.raises(ValueError, match="meow"):
        summarise.load([a, _run(tmp_path, "b", 2, [1.0, 2.0], alpha=0.1)])
    with pytest.raises(ValueError, match="seed 1 already"):
        summarise.load([a, _run(tmp_path, "c", 1, [1.0, 2.0])])
    _, curves = summarise.load([a])
    with pytest.raises(ValueError, match="no evaluation at 150"):
        summarise.seed_row(curves[("meow", 1)], at=(150,), reach=None)

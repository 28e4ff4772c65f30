import csv
import json
import re
import sys

import pytest


def test_train_main_writes_a_run_directory(tmp_path, load_script):
    train = load_script("train")
    run_dir = train.main(["--phases", "matrix", "--algs", "vdn,dmix", "--matrix_episodes", "64", "--progress", "false",
                          "--matrix_exploration", "uniform",
                          "--out_dir", str(tmp_path)])
    for f in ("config.json", "metrics.csv", "results.md", "matrix_quantiles.png"):
        assert (run_dir / f).exists(), f
    assert json.loads((run_dir / "config.json").read_text())["algs"] == "vdn,dmix"
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert {r["alg"] for r in rows} == {"vdn", "dmix"} and all(r["phase"] == "matrix-uniform" for r in rows)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "matrix-uniform-dmix-s0.buffer.npz", "matrix-uniform-dmix-s0.pt", "matrix-uniform-vdn-s0.buffer.npz", "matrix-uniform-vdn-s0.pt"]
    assert "| uniform | dmix | 0 |" in (run_dir / "results.md").read_text()
    assert any((run_dir / "tb").iterdir())


def test_train_records_its_environment_and_resume_keeps_it(tmp_path, load_script):
    import torch

    train = load_script("train")
    args = ["--phases", "matrix", "--algs", "vdn", "--matrix_episodes", "16", "--progress", "false", "--out_dir", str(tmp_path)]
    run_dir = train.main(args)
    env = json.loads((run_dir / "env.json").read_text())
    assert set(env) == {"python", "torch", "jax", "jaxlib", "jaxmarl", "numpy", "torch_threads", "machine", "cpu", "start_utc"}
    assert env["torch"] == torch.__version__ and re.match(r"\d+\.\d+\.\d+", env["torch"])  # the installed wheel, not a stub
    assert env["torch_threads"] == torch.get_num_threads() and env["start_utc"].endswith("+00:00")
    first = (run_dir / "env.json").read_text()
    train.main(args + ["--resume", str(run_dir)])
    assert (run_dir / "env.json").read_text() == first  # the first record stays; the resume writes its own
    assert set(json.loads((run_dir / "env_resume_1.json").read_text())) == set(env)


def test_aggregate_makes_the_grid_table(tmp_path, capsys, load_script):
    agg = load_script("aggregate")
    fields = ["phase", "alg", "seed", "t_env", "test_return", "test_win_rate"]
    for i, (alg, seed, wins) in enumerate([("dmix", 0, [0.0, 0.5]), ("dmix", 1, [0.0, 0.7]), ("qmix", 0, [0.1, 0.2]), ("iql", 0, [0.4, 0.1])]):
        d = tmp_path / f"job{i}"
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"env": "smax", "map": "3m"}))
        with open(d / "metrics.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fields)
            w.writeheader()
            w.writerow({"phase": "matrix", "alg": alg, "seed": seed, "t_env": 0, "test_return": 0, "test_win_rate": 1.0})
            for t, win in zip([0, 1000], wins):
                w.writerow({"phase": "micro", "alg": alg, "seed": seed, "t_env": t, "test_return": win, "test_win_rate": win})
    sys.argv = ["aggregate.py", str(tmp_path)]
    agg.main()
    out = capsys.readouterr().out
    assert "| smax | 3m | dmix | 2 | 0.60 | 0.60 +- 0.10 | 0.60 +- 0.10 | s0 0.50 / 0.50, s1 0.70 / 0.70 | 1000 |" in out
    assert "| smax | 3m | qmix | 1 | 0.20 | 0.20 +- 0.00 | 0.20 +- 0.00 | s0 0.20 / 0.20 | 1000 |" in out
    assert "| smax | 3m | iql | 1 | 0.10 | 0.10 +- 0.00 | 0.40 +- 0.00 | s0 0.10 / 0.40 | 1000 |" in out
    assert (tmp_path / "aggregate" / "win_rates.png").exists()
    # --seeds keeps a subset (written to its own folder); a job found in two runs is refused, not merged
    sys.argv = ["aggregate.py", str(tmp_path), "--seeds", "1"]
    agg.main()
    out = capsys.readouterr().out
    assert "| smax | 3m | dmix | 1 | 0.70 | 0.70 +- 0.00 | 0.70 +- 0.00 | s1 0.70 / 0.70 | 1000 |" in out
    assert "qmix" not in out and (tmp_path / "aggregate-s1" / "table.md").exists()
    dup = tmp_path / "job0-rerun"
    dup.mkdir()
    for f in ("config.json", "metrics.csv"):
        (dup / f).write_text((tmp_path / "job0" / f).read_text())
    sys.argv = ["aggregate.py", str(tmp_path)]
    with pytest.raises(SystemExit, match="appears in both"):
        agg.main()

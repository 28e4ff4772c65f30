"""Data parallelism: a train step with the batch sharded over 2 (forced host) devices equals the
single-device step. Runs in a subprocess because XLA_FLAGS must be set before jax starts."""
import os
import subprocess
import sys

SCRIPT = r"""
import jax, jax.numpy as jnp, numpy as np
assert len(jax.devices()) == 2, jax.devices()
from dlsm import models, steps
from dlsm.sde import VESDE
sde = VESDE(0.05, 5.0)
m = models.ToyScoreMLP(nf=2)
clf = models.ToyClassifierMLP(nf=2, num_classes=2)
x = jax.random.normal(jax.random.PRNGKey(0), (64, 2))
y = (x[:, 0] > 0).astype(jnp.int32)
p = m.init(jax.random.PRNGKey(1), x[:2], jnp.ones(2))
cp = clf.init(jax.random.PRNGKey(2), x[:2], jnp.ones(2))
opt = steps.make_optimizer(1e-3)
k = jax.random.PRNGKey(3)
sstep = steps.make_score_step(m, sde, opt)
cstep = steps.make_classifier_step(clf, m, sde, opt, "total", 1.0, 0.0, 1.0)
p1, _, l1 = sstep(p, opt.init(p), x, k)
c1, _, cl1, _ = cstep(cp, opt.init(cp), p, x, y, k)
mesh = steps.make_mesh(2)
rp = steps.replicate(p, mesh)
xs, ys = steps.shard_batch(x, mesh), steps.shard_batch(y, mesh)
assert len(xs.sharding.device_set) == 2
p2, _, l2 = sstep(rp, steps.replicate(opt.init(p), mesh), xs, k)
c2, _, cl2, _ = cstep(steps.replicate(cp, mesh), steps.replicate(opt.init(cp), mesh), rp, xs, ys, k)
np.testing.assert_allclose(l1, l2, rtol=1e-5)
np.testing.assert_allclose(cl1, cl2, rtol=1e-5)
for a, b in zip(jax.tree_util.tree_leaves(p1) + jax.tree_util.tree_leaves(c1), jax.tree_util.tree_leaves(p2) + jax.tree_util.tree_leaves(c2)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
print("OK")
"""


def test_sharded_step_equals_single_device():
    flags = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()  # keeps conftest.py's opt. level
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr

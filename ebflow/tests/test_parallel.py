"""Data parallelism over a device mesh, exercised on 2 fake CPU devices in a subprocess."""
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from ebflow.flow import fc_flow
    from ebflow.objectives import ObjectiveConfig
    from ebflow.training import init_state, make_mesh, make_optimizer, make_train_step, shard
    assert len(jax.devices()) == 2, jax.devices()
    flow = fc_flow((16,))
    opt = make_optimizer(1e-3)
    step = make_train_step(flow, "dsm", ObjectiveConfig(), opt)
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 16))
    s0 = init_state(flow, jax.random.PRNGKey(0), opt)
    ref, ref_loss = step(s0, x, jax.random.PRNGKey(2))
    mesh = make_mesh(2)
    s_sh, x_sh = shard(mesh, s0, x)
    assert len(x_sh.sharding.device_set) == 2 and x_sh.addressable_shards[0].data.shape == (4, 16)
    out, loss = step(s_sh, x_sh, jax.random.PRNGKey(2))
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(out.params), jax.tree_util.tree_leaves(ref.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    try:
        shard(mesh, s0, x[:7])
        raise SystemExit("odd batch accepted")
    except ValueError as e:
        assert "not divisible" in str(e)
    print("PARALLEL_OK")
    """
)


@pytest.mark.background  # long and self-contained: runs in parallel (conftest.py)
def test_sharded_step_equals_single_device_step():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "PARALLEL_OK" in r.stdout, r.stdout + r.stderr

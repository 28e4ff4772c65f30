"""Image models: shapes, per-example independence (needed by the DLSM input gradient), one DLSM+CE step."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlsm import models, steps
from dlsm.sde import VESDE


@pytest.mark.background
def test_image_models_one_dlsm_step():
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 8, 8, 1))
    y = jnp.array([0, 1, 2, 3])
    s = jnp.array([0.05, 0.5, 2.0, 8.0])
    um = models.ScoreUNet(ch=8, ch_mult=(1, 2), num_res_blocks=1)
    cm = models.ResNetCond(num_classes=4, nf=8, stage_sizes=(1, 1))
    # jitted: one compile each instead of one per parameter shape / per op
    up = jax.jit(um.init)(jax.random.PRNGKey(1), x, s)
    cp = jax.jit(cm.init)(jax.random.PRNGKey(2), x, s)
    capply = jax.jit(cm.apply)
    assert jax.jit(um.apply)(up, x, s).shape == x.shape
    assert capply(cp, x, s).shape == (4, 4)
    # GroupNorm: changing example 0 leaves the logits of the others unchanged
    x2 = x.at[0].set(1.0)
    np.testing.assert_allclose(capply(cp, x2, s)[1:], capply(cp, x, s)[1:], rtol=1e-5, atol=1e-6)
    opt = steps.make_optimizer(1e-3)
    step = steps.make_classifier_step(cm, um, VESDE(0.01, 10.0), opt, "total", 1.0, 0.0, 1.0)
    cp2, _, loss, aux = step(cp, opt.init(cp), up, x, y, jax.random.PRNGKey(3))
    assert np.isfinite(float(loss)) and float(aux["dlsm"]) > 0
    changed = [not np.allclose(a, b) for a, b in zip(jax.tree_util.tree_leaves(cp), jax.tree_util.tree_leaves(cp2))]
    assert any(changed)

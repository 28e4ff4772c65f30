"""The train step's EMA of parameters and its gradient clipping do what they say."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ebflow import layers as L
from ebflow.flow import cnn_flow, fc_flow
from ebflow.objectives import ObjectiveConfig
from ebflow.training import eval_params, init_state, load_checkpoint, make_optimizer, make_train_step, save_checkpoint

SN_FLOW = cnn_flow((4, 4, 1), num_blocks=2, convs_per_block=1, kernel_size=3, spectral_norm=True)


def _conv_sigmas(flow, params, stats):
    """(u^T W v from the state, numpy's largest singular value of W) for every spectral-norm convolution."""
    out = []
    for layer, p, s in zip(flow.layers, params, stats):
        if isinstance(layer, L.Conv2d):
            mat = np.asarray(p["kernel"]).reshape(-1, p["kernel"].shape[-1]).T
            out.append((float(layer.sigma({**p, **s})), np.linalg.svd(mat, compute_uv=False)[0]))
    return out


def test_ema_follows_the_warmed_up_decay():
    """ema_t = d_t ema_{t-1} + (1 - d_t) params_t with d_t = min(decay, (1 + t) / (10 + t))."""
    flow = fc_flow((5,))
    opt = make_optimizer(1e-2)
    step = make_train_step(flow, "dsm", ObjectiveConfig(), opt, ema_decay=0.999)
    s0 = init_state(flow, jax.random.PRNGKey(0), opt)
    x = jax.random.normal(jax.random.PRNGKey(1), (16, 5))
    s1, _ = step(s0, x, jax.random.PRNGKey(2))
    s2, _ = step(s1, x, jax.random.PRNGKey(3))
    for e0, p1, p2, e2 in zip(*(jax.tree_util.tree_leaves(t) for t in (s0.ema_params, s1.params, s2.params, s2.ema_params))):
        e1 = 0.1 * e0 + 0.9 * p1  # t = 0: d = 1/10
        np.testing.assert_allclose(e2, (2 / 11) * e1 + (9 / 11) * p2, rtol=1e-6, atol=1e-9)  # t = 1: d = 2/11
    assert float(jnp.abs(s2.params[0]["w"] - s0.params[0]["w"]).max()) > 1e-3  # the parameters did move


def test_gradient_clipping_bounds_what_the_optimiser_sees():
    """With grad_clip = c, RMSprop's second-moment state after one step is 0.01 * clipped g^2: sum = 0.01 c^2."""
    params = {"w": jnp.zeros(10)}
    g = {"w": jnp.arange(1.0, 11.0) * 10.0}  # norm ~196
    for clip, expect in ((1.0, 0.01 * 1.0), (0.0, 0.01 * float(jnp.sum(g["w"] ** 2)))):
        opt = make_optimizer(1e-3, grad_clip=clip)
        _, st = opt.update(g, opt.init(params), params)
        nu = optax.tree_utils.tree_get(st, "nu")
        np.testing.assert_allclose(float(jnp.sum(nu["w"])), expect, rtol=1e-5)


def test_lr_decay_stops_after_max_decays():
    """lr_t = lr * lr_decay^min(t // decay_every, max_decays), read back from RMSprop's update on a constant gradient
    (update_t = -lr_t g / (sqrt(nu_t) + eps), nu_t = (1 - 0.99^(t+1)) g^2); the paper CNN configs carry the official cap."""
    g, params = {"w": jnp.full(3, 2.0)}, {"w": jnp.zeros(3)}
    for cap, expect in ((3, [0.5 ** min(t // 2, 3) for t in range(12)]), (0, [0.5 ** (t // 2) for t in range(12)])):
        opt = make_optimizer(1e-2, lr_decay=0.5, decay_every=2, max_decays=cap)
        st, lrs = opt.init(params), []
        for t in range(12):
            u, st = opt.update(g, st, params)
            nu = (1 - 0.99 ** (t + 1)) * 4.0
            lrs.append(float(-u["w"][0]) * (np.sqrt(nu) + 1e-8) / 2.0)
        np.testing.assert_allclose(lrs, 1e-2 * np.array(expect), rtol=1e-6)
    assert lrs[-1] < 1e-2 * 0.5**3 * 0.9  # without the cap it keeps decaying: the cap is what holds it
    import train
    assert train.parse_args(["--config", "paper-cifar-cnn"]).max_decays == 19
    assert train.parse_args(["--config", "paper-mnist-cnn"]).max_decays == 49


def test_paper_configs_carry_the_official_per_objective_schedule():
    """The official configs set gamma / milestones / clipping per objective (cifar/cnn/ml.txt gamma 0.8, ssm.txt 0.9,
    fdssm.txt 0.85 with milestones 50); ``objective_config`` resolves them, and a command-line override of them works."""
    import train
    cfg = train.parse_args(["--config", "paper-cifar-cnn"])
    got = {o: train.objective_config(cfg, o) for o in ("ml", "sml", "ssm", "dsm", "fdssm")}
    assert {o: c.lr_decay for o, c in got.items()} == {"ml": 0.8, "sml": 0.8, "ssm": 0.9, "dsm": 0.8, "fdssm": 0.85}
    assert {o: c.max_decays for o, c in got.items()} == {"ml": 19, "sml": 19, "ssm": 19, "dsm": 19, "fdssm": 49}
    assert isinstance(got["fdssm"].max_decays, int) and got["ml"].decay_every == 400 and got["ml"].lr == cfg.lr
    fc = train.parse_args(["--config", "paper-mnist-fc"])
    assert train.objective_config(fc, "fdssm").grad_clip == 5.0 and train.objective_config(fc, "ssm").grad_clip == 0.0
    cli = train.parse_args(["--config", "paper-cifar-cnn", "--objective-overrides", '{"ssm": {"lr_decay": 0.5}}'])
    assert train.objective_config(cli, "ssm").lr_decay == 0.5 and train.objective_config(cli, "ml").lr_decay == 0.9


def test_weight_decay_is_torch_l2_after_clipping():
    """torch: clip_grad_norm_, then RMSprop(weight_decay=w) steps on clip(g) + w p. So two steps of ours with weight
    decay equal two steps without it fed clip(g) + w p by hand (the RMSprop state sees the decayed gradient too)."""
    p0, g = {"w": jnp.linspace(-2.0, 3.0, 10)}, {"w": jnp.arange(1.0, 11.0) * 10.0}
    clip, wd = 1.0, 0.5
    ours, ref = make_optimizer(1e-2, grad_clip=clip, weight_decay=wd), make_optimizer(1e-2)
    p, q, s, r = p0, p0, ours.init(p0), ref.init(p0)
    for _ in range(2):
        u, s = ours.update(g, s, p)
        hand = {"w": g["w"] * clip / jnp.linalg.norm(g["w"]) + wd * q["w"]}
        v, r = ref.update(hand, r, q)
        p, q = optax.apply_updates(p, u), optax.apply_updates(q, v)
    np.testing.assert_allclose(p["w"], q["w"], rtol=1e-6)
    no_wd = make_optimizer(1e-2, grad_clip=clip)
    assert float(jnp.abs(no_wd.update(g, no_wd.init(p0), p0)[0]["w"] - ours.update(g, ours.init(p0), p0)[0]["w"]).max()) > 1e-4


def test_paper_configs_carry_the_official_weight_decay_and_spectral_norm_per_objective():
    """mnist/cnn/{ml,sml,dsm}.txt set wd 1e-5 (others 0); cifar/cnn/{sml,fdssm}.txt set spec_norm 0 (others 1). The
    objective's optimiser and flow are built from its own settings (what train_one does)."""
    import train
    objs = ("ml", "sml", "ssm", "dsm", "fdssm")
    mnist, cifar = train.parse_args(["--config", "paper-mnist-cnn"]), train.parse_args(["--config", "paper-cifar-cnn"])
    assert {o: train.objective_config(mnist, o).weight_decay for o in objs} == {
        "ml": 1e-5, "sml": 1e-5, "ssm": 0.0, "dsm": 1e-5, "fdssm": 0.0}
    sn = {o: train.objective_config(cifar, o).spectral_norm for o in objs}
    assert sn == {"ml": True, "sml": False, "ssm": True, "dsm": True, "fdssm": False}
    assert {o: train.build_model(train.objective_config(cifar, o), (8, 8, 3))[0].has_stats for o in objs} == sn
    assert all(train.objective_config(train.parse_args(["--config", c]), o).weight_decay == 0.0
               for c in ("paper-mnist-fc", "paper-cifar-fc", "paper-cifar-cnn", "paper-mnist-glow") for o in objs)
    params = {"w": jnp.ones(3)}  # zero gradient: only weight decay moves the parameters
    for o, moves in (("ml", True), ("ssm", False)):
        opt = train.optimizer_for(train.objective_config(mnist, o))
        u, _ = opt.update({"w": jnp.zeros(3)}, opt.init(params), params)
        assert bool(jnp.any(u["w"] != 0)) == moves, o


@pytest.fixture(scope="module")
def frozen_sn_step():
    """One compiled DSM train step on the spectral-norm CNN with the kernels frozen (lr 0), shared by the two tests
    below (compiling the step dominates their time)."""
    opt = make_optimizer(0.0)
    return opt, make_train_step(SN_FLOW, "dsm", ObjectiveConfig(sigma=0.5), opt)


def test_train_step_runs_one_power_iteration_per_step(frozen_sn_step):
    """With the kernels frozen (lr 0) the state's sigma converges over steps to numpy's sigma_max: one iteration per
    step from the kept u (torch's training mode); evaluation binds the stored u, v to the EMA params, no iteration."""
    flow = SN_FLOW
    opt, step = frozen_sn_step
    s = init_state(flow, jax.random.PRNGKey(0), opt)
    s = s._replace(params=jax.tree_util.tree_map(  # away from the degenerate Dirac init
        lambda a: a + 0.3 * jax.random.normal(jax.random.PRNGKey(9), a.shape), s.params))
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 4, 4, 1))
    errs = []
    for t in range(40):
        s, loss = step(s, x, jax.random.PRNGKey(t))
        errs.append(max(abs(a - b) / b for a, b in _conv_sigmas(flow, s.params, s.stats)))
    assert np.isfinite(float(loss)) and int(s.step) == 40
    assert errs[0] > 1e-4 and errs[-1] < 1e-8, (errs[0], errs[-1])
    bound = eval_params(flow, s)
    for q, st, e in zip(bound, s.stats, s.ema_params):
        if st:
            np.testing.assert_array_equal(q["u"], st["u"])
            np.testing.assert_array_equal(q["kernel"], e["kernel"])


def test_spectral_norm_state_is_checkpointed_and_resumes(tmp_path, frozen_sn_step):
    """u, v are saved with the params and restored: continuing from the checkpoint equals continuing in memory.
    (lr 0 keeps the kernels, but u, v, RMSprop's second moment and the step count move; the template's params come
    from another seed, so every part of the state has to come from the file.)"""
    flow = SN_FLOW
    opt, step = frozen_sn_step
    s = init_state(flow, jax.random.PRNGKey(0), opt)
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 4, 4, 1))
    for t in range(3):
        s, _ = step(s, x, jax.random.PRNGKey(t))
    path = str(tmp_path / "ckpt.msgpack")
    save_checkpoint(path, s)
    template = init_state(flow, jax.random.PRNGKey(5), opt)
    r, _ = load_checkpoint(path, template)
    for a, b in zip(jax.tree_util.tree_leaves(r.stats), jax.tree_util.tree_leaves(s.stats)):
        np.testing.assert_array_equal(a, b)
    for a, c in zip(r.stats, template.stats):  # restored, not the template's (v; u is +-1 on a 1-channel conv)
        if a:
            assert np.abs(np.asarray(a["v"]) - np.asarray(c["v"])).max() > 1e-3
    for a, b, c in zip(*(jax.tree_util.tree_leaves((t.params, t.opt_state)) for t in (r, s, template))):
        np.testing.assert_array_equal(a, b)
    assert max(float(np.abs(np.asarray(a) - np.asarray(c)).max()) for a, c in zip(
        *(jax.tree_util.tree_leaves((t.params, t.opt_state)) for t in (r, template)))) > 1e-3
    s4, l4 = step(s, x, jax.random.PRNGKey(3))
    r4, m4 = step(r, x, jax.random.PRNGKey(3))
    np.testing.assert_allclose(m4, l4, rtol=1e-12)
    for a, b in zip(jax.tree_util.tree_leaves(r4), jax.tree_util.tree_leaves(s4)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)

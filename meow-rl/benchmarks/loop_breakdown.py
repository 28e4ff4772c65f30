"""Where does the one-seed MEow JAX loop spend its time, next to a standalone update at the same
(Pendulum) sizes? Prints ms per environment step for each variant and the large buffer copies left
in the compiled loop.  python benchmarks/loop_breakdown.py"""
import os
import re
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from meow_rl.envs import pendulum
from meow_rl.loop import JaxTrainer, _update_n
from meow_rl.buffer import buffer_init, buffer_insert
from meow_rl.meow import MEowHParams, make_meow

N = 200
def per_step(fn, c, reps=3):
    c = fn(c); jax.block_until_ready(c)
    t = time.perf_counter()
    for _ in range(reps):
        c = fn(c)
    jax.block_until_ready(c)
    return (time.perf_counter() - t) / (reps * N) * 1e3

agent = make_meow(MEowHParams(), 3, 1)
res = {}
for bs in (100_000, 1_000):
    tr = JaxTrainer(agent, pendulum(), num_envs=1, buffer_size=bs, warmup=0, chunk=N)
    c = tr.init(jax.random.split(jax.random.PRNGKey(0), 1))
    res[f"loop buffer {bs}"] = per_step(lambda c: tr.run_chunk(c)[0], c)
    if bs == 100_000:
        txt = tr.run_chunk.lower(c).compile().as_text()
        copies = [l.strip()[:160] for l in txt.splitlines() if re.search(r"= f32\[[0-9,]*100000[0-9,]*\][^ ]* copy\(", l)]
        print("large copies in compiled loop:", len(copies)); [print("   ", x) for x in copies[:8]]
        big = [l.strip()[:160] for l in txt.splitlines() if "100000" in l and ("fusion" in l or "scatter" in l or "dynamic-update-slice" in l) and "=" in l]
        print("ops touching 100000-row arrays:", len(big)); [print("   ", x) for x in big[:12]]

# standalone update on a fixed batch, Pendulum sizes
B = 256
k = jax.random.split(jax.random.PRNGKey(0), 4)
batch = {"obs": jax.random.normal(k[0], (B, 3)), "action": jnp.tanh(jax.random.normal(k[1], (B, 1))),
         "reward": jax.random.normal(k[2], (B,)), "next_obs": jax.random.normal(k[3], (B, 3)), "done": jnp.zeros(B)}
st = agent.init(jax.random.PRNGKey(0))
upd = jax.jit(agent.update)
s = upd(st, batch, k[0])[0]; jax.block_until_ready(s)
t = time.perf_counter()
for i in range(N):
    s = upd(s, batch, k[0])[0]
jax.block_until_ready(s); res["standalone update (python loop of jit calls)"] = (time.perf_counter() - t) / N * 1e3

buf = buffer_init(100_000, 3, 1)
buf = buffer_insert(buf, {kk: jnp.repeat(v[:1], 1000, 0) if v.ndim > 1 else jnp.repeat(v[:1], 1000) for kk, v in batch.items()})
@jax.jit
def upd_loop(s):
    return jax.lax.fori_loop(0, N, lambda i, s: agent.update(s, batch, jax.random.fold_in(k[0], i))[0], s)
res["update only, fori_loop, fixed batch"] = per_step(upd_loop, st)
@jax.jit
def upd_sample_loop(s):
    return jax.lax.fori_loop(0, N, lambda i, s: _update_n(agent, B, s, buf, jax.random.fold_in(k[0], i), 1)[0], s)
res["sample + update, fori_loop"] = per_step(upd_sample_loop, st)
sv = jax.tree_util.tree_map(lambda x: x[None], st)
@jax.jit
def upd_sample_loop_vmap(s):
    return jax.lax.fori_loop(0, N, lambda i, s: jax.vmap(lambda ss: _update_n(agent, B, ss, buf, jax.random.fold_in(k[0], i), 1)[0])(s), s)
res["sample + update, fori_loop, vmapped over 1 seed"] = per_step(upd_sample_loop_vmap, sv)
for kk, v in res.items():
    print(f"{kk:55s} {v:.3f} ms/step  ({1e3 / v:.0f}/s)")

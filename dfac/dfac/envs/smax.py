"""JaxMARL's SMAX (SMAC scenarios re-implemented in JAX, no StarCraft II needed) behind the numpy
interface of `base.py`: `n_envs` copies vmapped and jit-compiled, stepped from the PyTorch learner.

Units: HeuristicEnemySMAX, actions 0-3 move, 4 stop, 5+ attack enemy k. Reward: the fraction of enemy
health removed + 1 on a win (SMAX's own, at most 2 per episode; `smac_reward_scale` gives the factor
that puts it on SMAC's scale, where a perfect episode returns 20). "SMAX, not SMAC": the scenarios
mirror SMAC's unit mixes, not its dynamics, so win rates are not comparable with the paper's.
"""
import numpy as np

from .base import SMAC_REWARD_SCALE_RATE, MultiAgentEnv, Obs


class SMAXEnv(MultiAgentEnv):
    def __init__(self, map_name: str = "3m", n_envs: int = 8, seed: int = 0, **env_kwargs):
        import jax
        import jax.numpy as jnp
        from jaxmarl import make
        from jaxmarl.environments.smax import map_name_to_scenario

        if n_envs < 1:
            raise ValueError("n_envs must be >= 1")
        try:
            scenario = map_name_to_scenario(map_name)
        except KeyError as e:
            raise ValueError(f"unknown SMAX map {map_name!r}") from e
        env = make("HeuristicEnemySMAX", scenario=scenario, **env_kwargs)
        self._env, self.map_name, self.n_envs = env, map_name, n_envs
        self.agents = list(env.agents)
        self.n_agents = len(self.agents)
        self.n_actions = int(env.action_space(self.agents[0]).n)
        self.episode_limit = int(env.max_steps)
        na = env.num_allies
        # What a perfect episode returns (SMAX's compute_reward): each step pays the allies the health the
        # enemies lost, each as a fraction of its unit type's maximum, summed and divided by num_enemies (so at
        # most 1 over an episode; 0 under use_self_play_reward), plus won_battle_bonus once on a win.
        self.max_return = (0.0 if env.use_self_play_reward else 1.0) + float(env.won_battle_bonus)
        # SMAX's world state holds raw positions (0..map size), cooldowns and unit-type ids; SMAC's is
        # normalised, and the QMIX/DMIX hypernetworks take it as input, so it is scaled to ~[0, 1] here.
        n_units = env.num_allies + env.num_enemies
        n_feat = len(env.own_features)  # health, x, y, cooldown, unit-type bits
        self.unit_dim = n_feat  # the state starts with every unit's n_feat features, allies first
        unit_scale = np.ones(n_feat, np.float32)
        unit_scale[1:3] = [env.map_width, env.map_height]
        unit_scale[3] = float(np.max(np.asarray(env.unit_type_weapon_cooldowns)))
        state_scale = jnp.asarray(np.concatenate([np.tile(unit_scale, n_units), np.ones(n_units, np.float32),
                                                  np.full(n_units, max(len(env.unit_type_health) - 1, 1), np.float32)]))

        def observe(obs, state):
            avail = env.get_avail_actions(state)
            return (jnp.stack([obs[a] for a in self.agents]), obs["world_state"] / state_scale,
                    jnp.stack([avail[a] for a in self.agents]).astype(jnp.float32))

        def reset(key):
            obs, state = env.reset(key)
            return state, observe(obs, state)

        def step(key, state, actions):
            key, key_reset = jax.random.split(key)
            obs_st, state_st, rew, dones, _ = env.step_env(key, state, {a: actions[i] for i, a in enumerate(self.agents)})
            obs_re, state_re = env.reset(key_reset)
            done = dones["__all__"]
            alive = state_st.state.unit_alive
            won = jnp.all(~alive[na:]) & jnp.any(alive[:na])
            timeout = state_st.state.step >= env.max_steps
            final = observe(obs_st, state_st)
            state_new = jax.tree.map(lambda x, y: jax.lax.select(done, x, y), state_re, state_st)
            nxt = jax.tree.map(lambda x, y: jax.lax.select(done, x, y), observe(obs_re, state_re), final)
            return state_new, nxt, final, rew[self.agents[0]], done & ~timeout, done, won

        self._reset = jax.jit(jax.vmap(reset))
        self._step = jax.jit(jax.vmap(step))
        self._key = jax.random.PRNGKey(seed)
        self._split = jax.random.split
        self._jnp = jnp
        obs = self.reset()
        self.obs_dim, self.state_dim = obs.obs.shape[-1], obs.state.shape[-1]
        self.last_final_obs = None

    def smac_reward_scale(self) -> float:
        """SMAC divides r by max_reward / 20 so that a perfect episode returns 20 (base.SMAC_REWARD_SCALE_RATE);
        the same normalisation of SMAX's reward is r x 20 / max_return (3m: 20 / 2 = 10)."""
        return SMAC_REWARD_SCALE_RATE / self.max_return

    def _keys(self):
        self._key, sub = self._split(self._key)
        return self._split(sub, self.n_envs)

    def get_rng_state(self):
        return np.asarray(self._key)

    def set_rng_state(self, state):
        if state is not None:
            self._key = self._jnp.asarray(state)

    def reset(self) -> Obs:
        self._state, o = self._reset(self._keys())
        self.last_final_obs = None
        return Obs(*(np.array(x, dtype=np.float32) for x in o))

    def step(self, actions):
        actions = self.check_actions(actions)
        self._state, nxt, final, reward, terminated, done, won = self._step(self._keys(), self._state, self._jnp.asarray(actions, dtype=self._jnp.int32))
        self.last_final_obs = Obs(*(np.array(x, dtype=np.float32) for x in final))
        return (Obs(*(np.array(x, dtype=np.float32) for x in nxt)), np.asarray(reward, np.float32),
                np.asarray(terminated), np.asarray(done), np.asarray(won))

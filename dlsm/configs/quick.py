# The embedded default: the paper's inter-twinning moons (exact oracle scores), sized for 2 CPU cores.
# Departures from the toy study (see paper-toy): sigma_max 40 so the VE prior covers the +-30 data,
# weighting w = 1, the "film" toy MLP (see dlsm/models.py), fewer steps, a larger classifier learning
# rate, no Langevin corrector, and the DLSM residual summed (not averaged) over the 2 coordinates, which is
# coef 0.0625 in the official (torch.mean) convention; the README's 2-D table was measured with these settings.
OVERRIDES = dict(
    dataset="moons",
    sigma_min=1e-2, sigma_max=40.0,
    score_model="toy_mlp", score_steps=4000, score_batch=1000, score_lr=1e-3, score_weighting=1.0,
    classifier="toy_mlp", clf_steps=2000, clf_batch=1000, clf_lr=1e-3,
    weighting_dlsm=1.0, weighting_ce=0.0, coef=0.125, dlsm_reduce_mean=False,
    sampler="pc", sample_steps=500, snr=0.16, n_corrector=0, samples_per_class=1000, scaling_factor=4.0,
)

# The toy study of the paper / official dlsm-toy: sigma 1e-3..10, weighting 2 (DSM and DLSM), CE weight 0,
# coef 0.125, classifier lr 1e-5, 40k iterations, batch 4000 (classifier) / 2000 (score), lr 5e-4 (score).
OVERRIDES = dict(
    dataset="moons",
    sigma_min=1e-3, sigma_max=10.0,
    score_model="toy_mlp", toy_arch="paper", score_steps=40000, score_batch=2000, score_lr=5e-4, score_weighting=2.0,
    classifier="toy_mlp", clf_steps=40000, clf_batch=4000, clf_lr=1e-5,
    weighting_dlsm=2.0, weighting_ce=0.0, coef=0.125,
    sampler="pc", sample_steps=1000, snr=0.16, samples_per_class=2000, scaling_factor=10.0,
)

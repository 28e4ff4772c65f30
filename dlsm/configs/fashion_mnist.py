# Fashion-MNIST 28x28 (Debian's dataset-fashion-mnist); small enough for a long CPU run, better on a GPU.
# Classifier objective as the official CIFAR configs: w = w_ce = 0, coef 1, mean-reduced DLSM; scaling x10.
OVERRIDES = dict(
    dataset="fashion_mnist",
    sigma_min=1e-2, sigma_max=30.0,
    score_model="unet", unet_ch=32, unet_ch_mult=(1, 2, 2), unet_res_blocks=1,
    score_steps=20000, score_batch=128, score_lr=5e-4, score_weighting=1.0,
    classifier="resnet_cond", clf_nf=16, clf_stage_sizes=(1, 1, 1), clf_steps=5000, clf_batch=128, clf_lr=5e-4,
    weighting_dlsm=0.0, weighting_ce=0.0, coef=1.0, dlsm_reduce_mean=True,
    sampler="pc", sample_steps=500, snr=0.16, samples_per_class=200, scaling_factor=10.0,
    eval_feature_steps=2000, cas_steps=2000,
)

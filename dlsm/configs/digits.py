# sklearn 8x8 digits: a small U-Net score model and a small ResNet-cond classifier, CPU-sized.
# Classifier objective as the official CIFAR configs (chen-hao-chao/dlsm configs/default_cifar_configs.py):
# w = w_ce = 0, coef 1, DLSM residual averaged over the data dimensions; scaling baseline x10 (the
# official README's `--scale 10`). Budgets (steps, lr, sampler steps) are CPU-sized, not the paper's.
OVERRIDES = dict(
    dataset="digits",
    sigma_min=1e-2, sigma_max=10.0,
    score_model="unet", unet_ch=32, unet_ch_mult=(1, 2), unet_res_blocks=1,
    score_steps=3000, score_batch=128, score_lr=1e-3, score_weighting=1.0,
    classifier="resnet_cond", clf_nf=16, clf_stage_sizes=(1, 1), clf_steps=1500, clf_batch=128, clf_lr=1e-3,
    weighting_dlsm=0.0, weighting_ce=0.0, coef=1.0, dlsm_reduce_mean=True,
    sampler="pc", sample_steps=200, snr=0.16, n_corrector=1, samples_per_class=100, scaling_factor=10.0,
    eval_feature_steps=800, cas_steps=800,
)

# sklearn 8x8 digits: a small U-Net score model and a small ResNet-cond classifier, CPU-sized.
OVERRIDES = dict(
    dataset="digits",
    sigma_min=1e-2, sigma_max=10.0,
    score_model="unet", unet_ch=32, unet_ch_mult=(1, 2), unet_res_blocks=1,
    score_steps=3000, score_batch=128, score_lr=1e-3, score_weighting=1.0,
    classifier="resnet_cond", clf_nf=16, clf_stage_sizes=(1, 1), clf_steps=1500, clf_batch=128, clf_lr=1e-3,
    weighting_dlsm=1.0, weighting_ce=0.0, coef=1.0,
    sampler="pc", sample_steps=200, snr=0.16, samples_per_class=100, scaling_factor=4.0,
    eval_feature_steps=800, cas_steps=800,
)

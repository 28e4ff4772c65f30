# CIFAR-10 at the paper's scale (GPU): VE SDE sigma 0.01..50, classifier ResNet18-cond (nf 32),
# 60k classifier iterations, batch 150, Adam 2e-4, clip 1, w = w_ce = 0, coef 1. The official score
# model is NCSN++ (950k iterations); here the U-Net of dlsm/models.py at NCSN++ width (ch 128, 4 levels).
OVERRIDES = dict(
    dataset="cifar10",
    sigma_min=1e-2, sigma_max=50.0,
    score_model="unet", unet_ch=128, unet_ch_mult=(1, 2, 2, 2), unet_res_blocks=4,
    score_steps=950000, score_batch=128, score_lr=2e-4, score_weighting=1.0,
    classifier="resnet_cond", clf_nf=32, clf_stage_sizes=(2, 2, 2, 2), clf_steps=60000, clf_batch=150, clf_lr=2e-4,
    weighting_dlsm=0.0, weighting_ce=0.0, coef=1.0,
    sampler="pc", sample_steps=1000, snr=0.16, samples_per_class=5000, scaling_factor=10.0,
    eval_feature_steps=20000, cas_steps=20000, n_devices=0,
)

"""The paper's settings (official code) for GPU runs.

2-D: batch 5000, 4000 iterations (2000 for 8 gaussians / spiral: override toy_steps per toy),
lambda 0.1, Adam 7.5e-4, clip 1, 100 noise levels for Asym/NAsym.
Images: NCSN++ (nf 128, ch_mult (1,2,2,2), 8 res blocks = deep, attention at 16, Fourier scale 16),
VE sigma 0.01..50, Adam 2e-4 with 5k warm-up, clip 1, EMA 0.999, batch 128, lambda 1e-4, K = 1
(the paper fine-tunes a U-NCSN++ from 600k to 750k iterations; here both train from scratch).
"""
PAPER_2D = dict(
    toy_steps=4000, toy_batch=5000, n_levels=100, eval_samples=5000, nll_samples=10000,
    image_dataset="", ae_steps=0,
)

_IMAGES = dict(
    toys=(), ae_steps=0, image_steps=750_000, image_batch=128, image_lr=2e-4, image_warmup=5000,
    image_ema=0.999, image_lam=1e-4, image_n_slices=1, image_sigma_min=0.01, image_sigma_max=50.0,
    nf=128, ch_mult=(1, 2, 2, 2), num_res_blocks=8, attn_resolutions=(16,),
    image_eval_samples=10000, image_nll_samples=10000, image_pc_steps=1000, n_devices=0,
    ckpt_every=10000, log_every=100,
)
PAPER_CIFAR10 = dict(_IMAGES, image_dataset="cifar10")
PAPER_CIFAR100 = dict(_IMAGES, image_dataset="cifar100")
PAPER_SVHN = dict(_IMAGES, image_dataset="svhn")

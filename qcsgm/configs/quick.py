"""The default: a CPU run of minutes (the 2-D comparison, then a short digits run)."""
QUICK = dict(
    toy_steps=800,
    toy_batch=1000,
    image_dataset="digits",
    image_steps=500,
    image_batch=32,
    nf=16,
    image_eval_samples=256,
    image_nll_samples=64,
    image_pc_steps=100,
    ae_steps=800,
)

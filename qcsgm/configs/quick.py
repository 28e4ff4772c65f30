"""The default: a CPU run of minutes (the 2-D comparison, then a short digits run, then the Section 6 demo).

Sized to finish well under 10 minutes on 2 CPU cores: 800 toy steps (the Asym ratio QCSBM / USBM is the
same at 400-3200 steps, see benchmarks/lambda_sweep.py), 1000 evaluation points, and a 300-step digits run
whose EMA (0.99) has forgotten the initialisation (0.99^300 = 0.05)."""
QUICK = dict(
    toy_steps=800,
    toy_batch=1000,
    eval_samples=1000,
    nll_samples=500,
    image_dataset="digits",
    image_steps=300,
    image_batch=32,
    image_lr=1e-3,
    image_warmup=50,
    image_ema=0.99,
    nf=16,
    image_eval_samples=256,
    image_nll_samples=64,
    image_pc_steps=100,
    ae_steps=800,
)

"""DLSM: denoising likelihood score matching for classifier-guided conditional generation (JAX).

Chao et al., "Denoising Likelihood Score Matching for Conditional Score-based Data Generation",
ICLR 2022 (arXiv:2203.14206). One module per concept of the paper:

  sde       the VE SDE (noise schedule, forward marginals, reverse-time discretisation)
  oracle    closed-form scores of a Gaussian mixture (the exact oracle of the 2-D experiment)
  data      moons, sklearn digits, Fashion-MNIST (IDX), CIFAR-10/100 (python pickles)
  models    toy MLPs of the paper; image score U-Net and time-conditioned ResNet classifier
  losses    denoising score matching, cross-entropy, the DLSM loss and the total loss
  sampling  classifier-guided PC sampler and probability-flow ODE
  metrics   score errors, precision/recall, Frechet distance, classification accuracy score
  train     pure jit-compiled train steps, the data-parallel mesh, checkpoints
"""

__version__ = "0.1.0"

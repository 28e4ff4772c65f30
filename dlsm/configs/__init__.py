"""Named configs: each module defines OVERRIDES, a dict of fields of train.Config.

  quick            the default: the paper's 2-D moons with an exact oracle, CPU, minutes
  digits           sklearn 8x8 digits, U-Net score model + ResNet-cond classifier, CPU
  fashion-mnist    Fashion-MNIST 28x28 from the Debian package, CPU-small
  paper-toy        the toy study's settings (40k iterations, batch 4000, sigma 1e-3..10, w=2, coef 0.125, lr 1e-5)
  paper-cifar10    NCSN++-sized U-Net score model + ResNet18-cond classifier (GPU)
  paper-cifar100   same with ResNet34-cond (GPU)
"""
from __future__ import annotations

import importlib

NAMES = ("quick", "digits", "fashion-mnist", "paper-toy", "paper-cifar10", "paper-cifar100")


def get(name: str) -> dict:
    if name not in NAMES:
        raise ValueError(f"unknown config {name!r}; choose one of {', '.join(NAMES)}")
    return dict(importlib.import_module(f"configs.{name.replace('-', '_')}").OVERRIDES)

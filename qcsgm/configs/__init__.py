"""Named configs: override dicts on qcsbm.config.Config. `python train.py --config NAME`."""
from .quick import QUICK
from .paper import PAPER_2D, PAPER_CIFAR10, PAPER_CIFAR100, PAPER_SVHN

CONFIGS = {
    "quick": QUICK,
    "paper-2d": PAPER_2D,
    "paper-cifar10": PAPER_CIFAR10,
    "paper-cifar100": PAPER_CIFAR100,
    "paper-svhn": PAPER_SVHN,
}

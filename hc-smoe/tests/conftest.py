import os
import sys
import tempfile

import pytest
import torch

# remote-code checkpoints: transformers copies modeling_hcsmoe.py here (not into the user's ~/.cache)
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="hcsmoe-modules-"))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
torch.set_num_threads(1)


@pytest.fixture
def ids():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (2, 24), generator=g)

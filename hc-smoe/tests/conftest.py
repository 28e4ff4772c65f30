import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
torch.set_num_threads(1)


@pytest.fixture
def ids():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (2, 24), generator=g)

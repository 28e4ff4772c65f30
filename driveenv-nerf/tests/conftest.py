import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch.set_num_threads(1)  # much faster than 2 threads on a shared CPU


@pytest.fixture(scope="session")
def course():
    from driveenv_nerf.course import campus_course
    return campus_course()

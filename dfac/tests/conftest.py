import importlib.util
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def load_script():
    """Load one of the project's top-level scripts (train.py, aggregate.py) as a module: load_script("train")."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    return load

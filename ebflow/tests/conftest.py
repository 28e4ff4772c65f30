"""Tests run in float64 so invariants (inverse, log-det, score identities) can be checked tightly.
The float32 path that training uses is exercised end to end in test_train.py."""
import os
import sys

import jax

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # train.py

import atexit
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

# identical programs compiled by several tests (and by repeated main() calls) compile once. The cache
# lives for one test session only (a fresh temporary dir), so a local `make test` costs what a clean
# CI machine pays instead of reusing programs compiled by an earlier session.
_CACHE = tempfile.mkdtemp(prefix="meow-rl-jax-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

# identical programs compiled by several tests (and by repeated main() calls) compile once
jax.config.update("jax_compilation_cache_dir", os.path.join(tempfile.gettempdir(), "meow-rl-jax-cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

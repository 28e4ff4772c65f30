"""DriveEnv-NeRF: a NeRF-built driving environment for real-world validation (reference implementation)."""

__version__ = "0.1.0"

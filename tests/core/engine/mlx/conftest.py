"""The MLX engine's fixtures (tests/mlx_engine.py): an engine installed once into a cache folder."""

from tests.mlx_engine import mlx_engine_home, mlx_settings  # noqa: F401 (fixtures)

"""The MLX engine (``--engine mlx``): mlx-audio in its own environment, run as a child process.

``install.py`` makes the environment, ``child_main.py`` runs in it (never imported here),
``supervisor.py`` starts and watches the child, ``engine.py`` is the Engine protocol over its
HTTP API. Choosing and switching engines: ``core/engine/selection.py``.
"""

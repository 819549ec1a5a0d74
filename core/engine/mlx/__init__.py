"""The MLX engine (``--engine mlx``): mlx-audio in its own environment, run as a child process.

* ``install.py`` -- the engine's environment under the data dir (``engines install|list|remove``);
* ``child_main.py`` -- the child: mlx-audio's server with the studio's few additions
  (runs with the engine's Python, never imported here);
* ``supervisor.py`` -- start on a free loopback port, health, restart after a crash, stop;
* ``engine.py`` -- the Engine protocol over the child's HTTP API.

Choosing it (``--engine auto``) and switching to and from it live in
``core/engine/selection.py``; its weights setting is ``core.settings.MlxQuantize``. Nothing
in this package imports MLX, which lives in the other environment.
"""

"""Measuring the engine, in two suites that share :mod:`core.tools.bench.common`.

* :mod:`core.tools.bench.studio_suite` -- model loads, real-time factor, mode
  switches and memory (``qwen-tts-studio bench``);
* :mod:`core.tools.bench.compare_suite` -- the studio path against the stock
  ``qwen_tts`` call, and a profile of where a stock call's time goes
  (``qwen-tts-studio bench --arch/--compare``).
"""

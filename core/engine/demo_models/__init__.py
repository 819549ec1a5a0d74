"""Tiny, randomly initialised Qwen3-TTS checkpoints, built offline in seconds.

Real Qwen3-TTS weights cannot be downloaded everywhere the studio runs (tests,
CI, offline demo mode, benchmarks of the plumbing). This package writes three
miniature checkpoints -- ``base`` (voice clone), ``custom_voice`` and
``voice_design`` -- that the *real* ``qwen_tts`` package loads with
``Qwen3TTSModel.from_pretrained(dir)`` and runs through its real generation
code. Their weights are random, so their "speech" is noise; every checkpoint is
marked as a demo (``"studio_demo": true`` in its ``config.json``) so the app can
label what it plays.

Every value in these modules was chosen against qwen-tts 0.1.1 / transformers 4.57.3; the
comments say which constraint of that code a value satisfies. Nothing here
touches the network: configs are written by hand, models are constructed from
those configs, and the text tokenizer is trained on a small built-in corpus.

* :mod:`~core.engine.demo_models.build` -- the public entry points: build (or
  reuse) the checkpoints, and tell a finished or demo checkpoint apart;
* :mod:`~core.engine.demo_models.layout` -- the sizes and ids the parts share;
* :mod:`~core.engine.demo_models.weights` -- random initialisation and saving;
* :mod:`~core.engine.demo_models.text_tokenizer`,
  :mod:`~core.engine.demo_models.speech_tokenizer` and
  :mod:`~core.engine.demo_models.tts_model` -- the three parts of a checkpoint.
"""

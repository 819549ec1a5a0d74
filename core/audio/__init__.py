"""Audio in, audio out: the :class:`~core.audio.clip.Audio` type and what is done to it.

* :mod:`core.audio.clip` -- the ``Audio`` type (mono float32 at a sample rate) and level arithmetic;
* :mod:`core.audio.io` -- decoding files and arrays (``load_audio``), encoding and writing takes;
* :mod:`core.audio.edit` -- trims, levels, fades, joins and a take's ``post_process``;
* :mod:`core.audio.analysis` -- measuring a clone reference (``analyze``);
* :mod:`core.audio.reference` -- the clone reference pipeline shared by preview and generation.

Import from the module that does the job; this package itself exports nothing.
"""

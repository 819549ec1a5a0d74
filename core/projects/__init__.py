"""Projects: a book or an episode, from manuscript to mastered, chaptered file.

- ``model``: the project, its chapters and blocks, takes and QA verdicts (plain dataclasses);
- ``store``: one folder per project in the data dir, crash-safe, exported as one file;
- ``manuscript``: paste, .txt, Markdown and EPUB into chapters of blocks;
- ``render``: blocks rendered as jobs of the one take runner, re-taken when QA fails;
- ``qa``: each block heard back by the ASR and checked (words, length, silences, clipping);
- ``mastering``: loudness presets (ACX, podcast, broadcast) and the compliance report;
- ``export``: M4B with chapter markers, per-chapter MP3/WAV, zip, word-level subtitles.
"""

"""The voice library: a creator's saved voices, kept safe on disk.

* :mod:`.store` -- :class:`VoiceLibrary`, the locked folder of voices (saving, editing, import/export);
* :mod:`.records` -- :class:`Voice` and its ``voice.json`` schema, with the rules on every field;
* :mod:`.prompt_cache` -- clone prompts cached per voice and Base checkpoint (safetensors);
* :mod:`.archive` -- the zip export format and the checks an archive passes before import.

Importing it never imports torch: only reading or writing a cached prompt does.
"""

from core.storage.library.records import KINDS, SCHEMA_VERSION, Voice
from core.storage.library.store import VoiceLibrary

__all__ = ["KINDS", "SCHEMA_VERSION", "Voice", "VoiceLibrary"]

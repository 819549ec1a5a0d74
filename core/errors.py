"""The engine's one small error hierarchy.

Every message is written for the person who will read it in the studio or a
script: it says what went wrong and, where possible, what to do next. The UI
layer shows ``str(error)`` verbatim, so never put a traceback or repr in it.
"""

from __future__ import annotations


class StudioError(Exception):
    """Base class for every error the engine raises on purpose."""


class SettingsError(StudioError):
    """A setting has a value outside what it allows."""


class InvalidInput(StudioError):
    """A request the engine cannot act on (empty text, unknown speaker, ...)."""


class AudioError(InvalidInput):
    """Audio that cannot be decoded or is unusable (corrupt, empty, NaN, huge)."""


class ModelUnavailable(StudioError):
    """A checkpoint is not on disk and cannot be fetched right now."""


class ModelLoadError(StudioError):
    """A checkpoint is on disk but could not be loaded onto the device."""


class TrainingError(StudioError):
    """Fine-tuning could not go on (core/finetune/): bad data, a failed step, a full disk."""


class StorageFull(TrainingError):
    """A training checkpoint or a trained voice did not fit on the disk; nothing of it was kept."""


class GenerationError(StudioError):
    """The model failed while generating audio."""


class Stopped(StudioError):
    """The user stopped a take (the Stop button, or an API client that cancelled): not a failure.
    Not a GenerationError, so a stopped chunk is never retried or reported as failed."""


class RemoteEngineError(GenerationError):
    """No remote engine server could generate: every server for the checkpoint is down,
    unreachable or failing (the message names each server and its failure)."""


class LibraryError(StudioError):
    """The voice library refused an operation (bad name, bad import, ...)."""


class VoiceNotFound(LibraryError):
    """No voice with that name or id exists in the library."""


class DatasetError(StudioError):
    """The fine-tuning dataset store refused an operation (bad name, bad import, full disk, ...)."""


class DependencyError(StudioError):
    """A package the studio needs is missing, or its compiled library cannot load.

    Kept apart from disk and model errors on purpose: a broken install must
    never be reported as a full disk or a bad download.
    """

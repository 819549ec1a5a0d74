"""Training examples, the batches the talker reads, and the loss.

The layout is the official recipe's (QwenLM/Qwen3-TTS ``finetuning/dataset.py``), which is
what ``generate_custom_voice`` builds in its default non-streaming mode, position by position
(text channel | codec channel, ``n`` text tokens, ``T`` frames)::

    0..2          <|im_start|>assistant\\n   | -
    3..6          tts_pad x4                 | nothink, think_bos, think_eos, SPEAKER (6)
    7             tts_bos                    | codec_pad
    8..8+n-1      the text                   | codec_pad
    8+n           tts_eos                    | codec_pad
    8+n+1         tts_pad                    | codec_bos
    8+n+2..       tts_pad                    | frame 0..T-1 (codebook 0; + codebooks 1-15)
    8+n+2+T       tts_pad                    | codec_eos

Three fixes to the recipe, each a known upstream bug (docs/FINETUNING.md):

* the text embeddings go through ``talker.text_projection``, as generation does (without
  it the 0.6B model, whose text width differs, cannot train at all; QwenLM/Qwen3-TTS #188);
* the codebook-0 cross-entropy pairs each position with the NEXT one once (the recipe
  shifted the labels by hand and ``ForCausalLMLoss`` shifted them again; #278);
* the code predictor's loss is computed from ``forward_sub_talker_finetune``'s logits
  against codebooks 1-15 as they are (its own loss shifts them once more and leaves the last
  head untrained; #278); its hidden state is the talker's at the position before the frame,
  the one generation hands the code predictor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.audio.io import load_audio
from core.errors import InvalidInput, StudioError
from core.finetune.config import TrainRow

SAMPLE_RATE = 24_000
IGNORE = -100
SPEAKER_POSITION = 6
PREFIX = 8  # positions before the text


@dataclass
class Example:
    """One utterance ready for training: its token ids, its codes and its reference's index."""

    text_ids: torch.Tensor  # [3 + n] long: <|im_start|>assistant\n and the text
    codes: torch.Tensor  # [T, 16] long, from the checkpoint's speech tokenizer
    ref: int  # row of Prepared.speaker_embeddings


@dataclass
class Prepared:
    """Every example of a run, and the speaker embedding of each distinct reference."""

    examples: list[Example]
    speaker_embeddings: torch.Tensor  # [references, hidden], float32

    @property
    def speaker_embedding(self) -> torch.Tensor:
        """What row 3000 of the codec embedding gets: the references' mean (one reference: itself)."""
        return self.speaker_embeddings.mean(dim=0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "text_ids": [e.text_ids for e in self.examples],
            "codes": [e.codes for e in self.examples],
            "refs": [e.ref for e in self.examples],
            "speaker_embeddings": self.speaker_embeddings,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prepared:
        examples = [Example(t, c, int(r)) for t, c, r in zip(data["text_ids"], data["codes"], data["refs"])]
        return cls(examples, data["speaker_embeddings"])


@dataclass(frozen=True)
class TokenIds:
    """The special ids the layout needs, read from the checkpoint's config."""

    tts_pad: int
    tts_bos: int
    tts_eos: int
    codec_pad: int
    codec_bos: int
    codec_eos: int
    nothink: int
    think_bos: int
    think_eos: int

    @classmethod
    def of(cls, config: Any) -> TokenIds:
        talker = config.talker_config
        return cls(
            config.tts_pad_token_id,
            config.tts_bos_token_id,
            config.tts_eos_token_id,
            talker.codec_pad_id,
            talker.codec_bos_id,
            talker.codec_eos_token_id,
            talker.codec_nothink_id,
            talker.codec_think_bos_id,
            talker.codec_think_eos_id,
        )


@dataclass
class Batch:
    text_ids: torch.Tensor  # [B, L] text channel
    codec_ids: torch.Tensor  # [B, L] codec channel (codebook 0 and the specials)
    codes: torch.Tensor  # [B, L, 16] every codebook at the frame positions
    text_mask: torch.Tensor  # [B, L, 1]
    codec_mask: torch.Tensor  # [B, L, 1]: codec embeddings used (not the role, not the speaker slot)
    frame_mask: torch.Tensor  # [B, L] bool: the positions of the frames
    attention_mask: torch.Tensor  # [B, L] long
    labels: torch.Tensor  # [B, L] codebook 0 (and codec_eos) at the positions that predict it
    refs: torch.Tensor  # [B] reference index of each row

    def to(self, device: torch.device | str) -> Batch:
        return Batch(**{k: v.to(device) for k, v in self.__dict__.items()})


# --- preparing the rows -----------------------------------------------------------------


def assistant_text(text: str) -> str:
    return f"<|im_start|>assistant\n{text}<|im_end|>\n<|im_start|>assistant\n"


def prepare(
    tts: Any,
    rows: Sequence[TrainRow],
    progress: Callable[[int, int], None] | None = None,
    check: Callable[[], None] = lambda: None,
) -> Prepared:
    """Encodes every row once: text ids, the speech tokenizer's codes, reference embeddings.

    ``tts`` is a loaded Base ``Qwen3TTSModel`` (the speaker encoder is a Base model's).
    ``check`` is called between rows (it raises Stopped when the job is stopped).
    """
    if getattr(tts.model, "speaker_encoder", None) is None:
        raise InvalidInput("Fine-tuning starts from a Base checkpoint (it has the speaker encoder).")
    refs: dict[str, int] = {}
    embeddings: list[torch.Tensor] = []
    examples: list[Example] = []
    for number, row in enumerate(rows):
        check()
        text_ids = tts.processor(text=assistant_text(row.text), return_tensors="pt")["input_ids"]
        text_ids = text_ids.reshape(-1)[:-5].long().cpu()  # without <|im_end|>\n<|im_start|>assistant\n
        if text_ids.numel() <= 3:
            raise InvalidInput(f"Row {number + 1} has no text to speak.")
        samples = load_audio(row.audio, target_sr=SAMPLE_RATE).samples
        try:
            encoded = tts.model.speech_tokenizer.encode(samples, sr=SAMPLE_RATE)
        except Exception as exc:  # the codec's own errors (too short a clip, ...)
            raise StudioError(f"Could not encode the audio of row {number + 1} ({exc}).") from exc
        codes = encoded.audio_codes[0].long().cpu()
        if codes.ndim != 2 or codes.shape[0] < 1:
            raise InvalidInput(f"The audio of row {number + 1} is too short to train on.")
        if row.ref_audio not in refs:
            ref = load_audio(row.ref_audio, target_sr=SAMPLE_RATE).samples
            refs[row.ref_audio] = len(embeddings)
            embeddings.append(speaker_embedding(tts, ref))
        examples.append(Example(text_ids, codes, refs[row.ref_audio]))
        if progress is not None:
            progress(number + 1, len(rows))
    return Prepared(examples, torch.stack(embeddings))


def speaker_embedding(tts: Any, samples: np.ndarray) -> torch.Tensor:
    """The speaker encoder's embedding of a 24 kHz reference (the recipe's ref mel), float32 on the CPU."""
    embedding = tts.model.extract_speaker_embedding(np.asarray(samples, dtype=np.float32), SAMPLE_RATE)
    return embedding.detach().float().cpu().clone()


# --- batches ----------------------------------------------------------------------------


def collate(examples: Sequence[Example], ids: TokenIds) -> Batch:
    """Right-padded batch of ``examples`` in the layout of the module notes."""
    lengths = [PREFIX + e.text_ids.numel() + e.codes.shape[0] for e in examples]
    b, length = len(examples), max(lengths)
    groups = examples[0].codes.shape[1]
    text_ids = torch.zeros((b, length), dtype=torch.long)
    codec_ids = torch.zeros((b, length), dtype=torch.long)
    codes = torch.zeros((b, length, groups), dtype=torch.long)
    text_mask = torch.zeros((b, length), dtype=torch.bool)
    codec_mask = torch.zeros((b, length), dtype=torch.bool)
    frame_mask = torch.zeros((b, length), dtype=torch.bool)
    attention = torch.zeros((b, length), dtype=torch.long)
    labels = torch.full((b, length), IGNORE, dtype=torch.long)
    for i, (example, total) in enumerate(zip(examples, lengths)):
        n = example.text_ids.numel() - 3
        frames = example.codes.shape[0]
        first = PREFIX + n + 2  # the first frame's position
        text_ids[i, :3] = example.text_ids[:3]
        text_ids[i, 3:7] = ids.tts_pad
        text_ids[i, 7] = ids.tts_bos
        text_ids[i, PREFIX : PREFIX + n] = example.text_ids[3:]
        text_ids[i, PREFIX + n] = ids.tts_eos
        text_ids[i, PREFIX + n + 1 : total] = ids.tts_pad
        text_mask[i, :total] = True
        codec_ids[i, 3:8] = torch.tensor([ids.nothink, ids.think_bos, ids.think_eos, 0, ids.codec_pad])
        codec_ids[i, PREFIX : PREFIX + n + 1] = ids.codec_pad
        codec_ids[i, PREFIX + n + 1] = ids.codec_bos
        codec_ids[i, first : first + frames] = example.codes[:, 0]
        codec_ids[i, first + frames] = ids.codec_eos
        codec_mask[i, 3:total] = True
        codec_mask[i, SPEAKER_POSITION] = False  # the speaker embedding goes there
        codes[i, first : first + frames] = example.codes
        frame_mask[i, first : first + frames] = True
        labels[i, first : first + frames] = example.codes[:, 0]
        labels[i, first + frames] = ids.codec_eos
        attention[i, :total] = 1
    refs = torch.tensor([e.ref for e in examples], dtype=torch.long)
    return Batch(
        text_ids, codec_ids, codes, text_mask[..., None], codec_mask[..., None], frame_mask, attention, labels, refs
    )


def input_embeddings(talker: Any, batch: Batch, speaker: torch.Tensor) -> torch.Tensor:
    """The talker's input: projected text + codec embeddings + codebooks 1-15 at the frames.

    ``speaker`` is one embedding per row ([B, hidden]) placed at position 6.
    """
    text = talker.text_projection(talker.get_text_embeddings()(batch.text_ids))
    embeds = text * batch.text_mask.to(text.dtype)  # after the projection: its bias must not leak
    codec = talker.get_input_embeddings()(batch.codec_ids) * batch.codec_mask.to(text.dtype)
    codec[:, SPEAKER_POSITION, :] = speaker.to(codec.dtype)
    embeds = embeds + codec
    frames = batch.frame_mask[..., None].to(text.dtype)
    for group, table in enumerate(talker.code_predictor.get_input_embeddings(), start=1):
        embeds = embeds + table(batch.codes[:, :, group]) * frames
    return embeds


@dataclass
class Losses:
    total: torch.Tensor
    talker: torch.Tensor
    sub_talker: torch.Tensor


def talker_logits(talker: Any, batch: Batch, speaker: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook-0 logits, last hidden states) of one forward pass over the batch, the last position left out."""
    embeds = input_embeddings(talker, batch, speaker)
    out = talker(inputs_embeds=embeds[:, :-1], attention_mask=batch.attention_mask[:, :-1], output_hidden_states=True)
    return out.logits, out.hidden_states[0][-1]


def compute_losses(talker: Any, batch: Batch, speaker: torch.Tensor, sub_talker_weight: float) -> Losses:
    logits, hidden = talker_logits(talker, batch, speaker)
    vocab = logits.shape[-1]
    talker_loss = F.cross_entropy(
        logits.float().reshape(-1, vocab), batch.labels[:, 1:].reshape(-1), ignore_index=IGNORE
    )
    # A frame's codebooks 1-15 come from the talker's hidden state one position before it.
    frame_hidden = hidden[batch.frame_mask[:, 1:]]
    frame_codes = batch.codes[batch.frame_mask]
    sub_logits, _ = talker.forward_sub_talker_finetune(frame_codes, frame_hidden)
    sub_loss = F.cross_entropy(sub_logits.float().reshape(-1, sub_logits.shape[-1]), frame_codes[:, 1:].reshape(-1))
    return Losses(talker_loss + sub_talker_weight * sub_loss, talker_loss, sub_loss)

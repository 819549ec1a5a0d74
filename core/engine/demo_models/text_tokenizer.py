"""The text tokenizer: a toy byte-level BPE saved in Qwen2Tokenizer's layout."""

from __future__ import annotations

from pathlib import Path

from core.engine.demo_models.layout import write_json

# Special tokens of the text tokenizer, in Qwen's relative order. They are appended
# after the BPE vocabulary, as in the real tokenizer.
_TEXT_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|audio_start|>",
    "<|audio_end|>",
    "<tts_pad>",
    "<tts_text_bos>",
    "<tts_text_eod>",
    "<tts_text_bos_single>",
    "<|audio_pad|>",
)
_BPE_VOCAB_SIZE = 512  # 256 byte symbols + 256 merges

# Qwen2's pre-tokenisation regex (what Qwen2TokenizerFast converts to).
_QWEN2_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

# Sentences the toy BPE is trained on. "assistant", "user" and the newline must end
# up as single tokens: qwen_tts slices the prompt "<|im_start|>assistant\n" as exactly
# 3 tokens and "<|im_end|>\n<|im_start|>assistant\n" as exactly 5.
_CORPUS = (
    "Hello, this is a short test of the studio. How are you today?",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please speak slowly and clearly, with a warm and friendly voice.",
    "A calm, deep male voice reading the evening news in English.",
    "She laughed, then whispered: it is only a demonstration model.",
    "Numbers like 1, 2, 3, 42 and 2048 are read digit by digit.",
    "Good morning! The weather is sunny and the sky is clear.",
    "你好，欢迎使用语音合成工作室。今天天气很好。",
    "我们正在测试一个很小的随机模型，它的声音只是噪音。",
    "请用温柔的声音慢慢地读这句话。北京话和四川话也可以。",
    "Guten Tag! Das ist nur ein kleines Testmodell für die Sprachsynthese.",
    "Bonjour, ceci est une voix de démonstration, pas une vraie voix.",
    "Hola, esta es una prueba corta del estudio de voz.",
    "こんにちは、これは音声合成のテストです。",
    "안녕하세요, 이것은 음성 합성 테스트입니다.",
    "Привет, это короткая проверка синтеза речи.",
    "Ciao, questa è una breve prova dello studio vocale.",
    "Olá, este é um pequeno teste do estúdio de voz.",
)
_ROLE_WORDS = "assistant\nuser\n"


def write_text_tokenizer(folder: Path) -> dict[str, int]:
    """Trains a byte-level BPE and saves it in Qwen2Tokenizer's layout.

    Returns the ids of the special tokens plus ``"vocab_size"`` (specials included).
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )

    folder.mkdir(parents=True)
    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    # Same pipeline as Qwen2TokenizerFast (a Sequence, like the real one: transformers'
    # fix_mistral_regex patch, which qwen_tts requests, indexes into it for vocabularies
    # above 100k tokens; ours is too small for that patch to apply).
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    # Repeating the role words makes their merges the most frequent ones.
    corpus = list(_CORPUS) + [_ROLE_WORDS] * 64
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in _TEXT_SPECIAL_TOKENS])

    ids = {token: tokenizer.token_to_id(token) for token in _TEXT_SPECIAL_TOKENS}
    for word in ("assistant", "user", "\n"):
        if len(tokenizer.encode(word).ids) != 1:
            raise RuntimeError(f"demo tokenizer: {word!r} is not a single token")

    tokenizer.save(str(folder / "tokenizer.json"))
    tokenizer.model.save(str(folder))  # vocab.json + merges.txt (specials excluded, as in Qwen2)
    write_json(
        folder / "tokenizer_config.json",
        {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": {
                str(ids[t]): {
                    "content": t,
                    "lstrip": False,
                    "normalized": False,
                    "rstrip": False,
                    "single_word": False,
                    "special": True,
                }
                for t in _TEXT_SPECIAL_TOKENS
            },
            "additional_special_tokens": list(_TEXT_SPECIAL_TOKENS[1:]),
            "bos_token": None,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|im_end|>",
            "errors": "replace",
            "model_max_length": 32768,
            "pad_token": "<|endoftext|>",
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        },
    )
    # The root preprocessor config only names the processor class for AutoProcessor.
    write_json(folder / "preprocessor_config.json", {"processor_class": "Qwen3TTSProcessor"})
    info = dict(ids)
    info["vocab_size"] = tokenizer.get_vocab_size(with_added_tokens=True)
    return info

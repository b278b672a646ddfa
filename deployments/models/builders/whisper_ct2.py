"""Read a CTranslate2 Whisper ``model.bin`` and map it onto transformers Whisper weights.

The layout is the inverse of ``WhisperLoader`` in ``ctranslate2/converters/transformers.py``:
attention projections are fused (self-attention q|k|v, cross-attention k|v), layer norms
are ``gamma``/``beta`` and the output projection is an alias of the token embeddings.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import numpy as np

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
_BINARY_VERSION = 6


class _Cursor:
    """Little-endian reads over the bytes of a model.bin."""

    def __init__(self, data: bytes | memoryview):
        self.data = memoryview(data)
        self.offset = 0

    def unpack(self, fmt: str) -> int:
        (value,) = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize(fmt)
        return value

    def take(self, size: int) -> memoryview:
        chunk = self.data[self.offset : self.offset + size]
        if len(chunk) != size:
            raise ValueError("CTranslate2 model.bin is truncated")
        self.offset += size
        return chunk

    def string(self) -> str:
        return bytes(self.take(self.unpack("H"))).rstrip(b"\0").decode()


def read_ct2_variables(data: bytes | memoryview) -> dict[str, np.ndarray]:
    """Parse a CTranslate2 model.bin into name -> array (aliases resolved, arrays share data)."""
    cursor = _Cursor(data)
    version = cursor.unpack("I")
    if version != _BINARY_VERSION:
        raise ValueError(f"unsupported CTranslate2 binary version {version}")
    spec = cursor.string()
    if spec != "WhisperSpec":
        raise ValueError(f"model.bin holds a {spec}, not a WhisperSpec")
    cursor.unpack("I")  # spec revision: Whisper's layout has not changed across revisions
    variables: dict[str, np.ndarray] = {}
    for _ in range(cursor.unpack("I")):
        name = cursor.string()
        shape = tuple(cursor.unpack("I") for _ in range(cursor.unpack("B")))
        dtype = _DTYPES[cursor.unpack("B")]
        raw = cursor.take(cursor.unpack("I"))
        if dtype == "bfloat16":
            raise ValueError(f"bfloat16 variable {name} is not supported; reconvert as float16")
        variables[name] = np.frombuffer(raw, dtype=dtype).reshape(shape)
    for _ in range(cursor.unpack("I")):
        alias, target = cursor.string(), cursor.string()
        variables[alias] = variables[target]
    if any(name.endswith("_scale") for name in variables):
        raise ValueError("int8-quantized CTranslate2 models cannot be converted back losslessly")
    return variables


@dataclass(frozen=True)
class WhisperShape:
    """The architecture numbers a WhisperConfig needs, read off the CT2 variables."""

    vocab_size: int
    num_mel_bins: int
    d_model: int
    encoder_layers: int
    decoder_layers: int
    encoder_attention_heads: int
    decoder_attention_heads: int
    encoder_ffn_dim: int
    decoder_ffn_dim: int
    max_source_positions: int
    max_target_positions: int


def _layer_count(variables: dict[str, np.ndarray], stack: str) -> int:
    pattern = re.compile(rf"{stack}/layer_(\d+)/")
    return 1 + max(int(m.group(1)) for name in variables if (m := pattern.match(name)))


def whisper_shape(variables: dict[str, np.ndarray]) -> WhisperShape:
    """Architecture of the CT2 Whisper model held in ``variables``."""
    embeddings = variables["decoder/embeddings/weight"]
    return WhisperShape(
        vocab_size=embeddings.shape[0],
        num_mel_bins=variables["encoder/conv1/weight"].shape[1],
        d_model=embeddings.shape[1],
        encoder_layers=_layer_count(variables, "encoder"),
        decoder_layers=_layer_count(variables, "decoder"),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=variables["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=variables["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=variables["decoder/position_encodings/encodings"].shape[0],
    )


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


class _StateDict(dict):
    """transformers names -> float32 arrays, filled from CT2 names."""

    def __init__(self, variables: dict[str, np.ndarray]):
        super().__init__()
        self.variables = variables

    def linear(self, hf: str, ct2: str) -> None:
        self[f"{hf}.weight"] = _f32(self.variables[f"{ct2}/weight"])
        self[f"{hf}.bias"] = _f32(self.variables[f"{ct2}/bias"])

    def norm(self, hf: str, ct2: str) -> None:
        self[f"{hf}.weight"] = _f32(self.variables[f"{ct2}/gamma"])
        self[f"{hf}.bias"] = _f32(self.variables[f"{ct2}/beta"])

    def fused(self, hf: str, ct2: str, parts: tuple[str, ...]) -> None:
        """Split a fused projection; Whisper's k projection has no bias (CT2 stores zeros)."""
        weights = np.split(self.variables[f"{ct2}/weight"], len(parts))
        biases = np.split(self.variables[f"{ct2}/bias"], len(parts))
        for part, weight, bias in zip(parts, weights, biases, strict=True):
            self[f"{hf}.{part}_proj.weight"] = _f32(weight)
            if part != "k":
                self[f"{hf}.{part}_proj.bias"] = _f32(bias)


def _attention(state: _StateDict, hf: str, ct2: str, *, cross: bool) -> None:
    if cross:
        state.fused(hf, f"{ct2}/linear_0", ("q",))
        state.fused(hf, f"{ct2}/linear_1", ("k", "v"))
        state.linear(f"{hf}.out_proj", f"{ct2}/linear_2")
    else:
        state.fused(hf, f"{ct2}/linear_0", ("q", "k", "v"))
        state.linear(f"{hf}.out_proj", f"{ct2}/linear_1")


def _layer(state: _StateDict, hf: str, ct2: str, *, decoder: bool) -> None:
    _attention(state, f"{hf}.self_attn", f"{ct2}/self_attention", cross=False)
    state.norm(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
    if decoder:
        _attention(state, f"{hf}.encoder_attn", f"{ct2}/attention", cross=True)
        state.norm(f"{hf}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm")
    state.linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0")
    state.linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1")
    state.norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")


def whisper_state_dict(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """WhisperForConditionalGeneration weights (float32) from CT2 variables; proj_out is tied."""
    shape = whisper_shape(variables)
    state = _StateDict(variables)
    state.linear("model.encoder.conv1", "encoder/conv1")
    state.linear("model.encoder.conv2", "encoder/conv2")
    for stack, layers in (("encoder", shape.encoder_layers), ("decoder", shape.decoder_layers)):
        state[f"model.{stack}.embed_positions.weight"] = _f32(
            variables[f"{stack}/position_encodings/encodings"]
        )
        state.norm(f"model.{stack}.layer_norm", f"{stack}/layer_norm")
        for i in range(layers):
            _layer(
                state, f"model.{stack}.layers.{i}", f"{stack}/layer_{i}", decoder=stack == "decoder"
            )
    state["model.decoder.embed_tokens.weight"] = _f32(variables["decoder/embeddings/weight"])
    return dict(state)

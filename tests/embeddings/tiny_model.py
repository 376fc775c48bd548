"""A tiny fastembed-loadable model directory, built without network and without the `onnx` package.

It lets the tests drive the real fastembed + onnxruntime path (load from EMBEDDING_MODEL_PATH,
`passage_embed`, `query_embed`) offline. The "model" is a single ONNX `Gather`: each token id
picks a row of a fixed random table, and fastembed's bge pipeline (CLS pooling = first token,
then L2 normalisation) turns that into the embedding. So a text's vector is the normalised table
row of its first word, which the tests can predict exactly.

The ONNX file is protobuf; the few messages it needs are encoded by hand below (field numbers
from onnx.proto: ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto, TypeProto).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.normalizers import Lowercase
from tokenizers.pre_tokenizers import Whitespace

WORDS = ["[PAD]", "[UNK]", "alpha", "beta", "gamma", "delta", "postgres", "vector", "memory", "query"]
_FLOAT, _INT64 = 1, 7  # TensorProto.DataType


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, elem_type: int, dims: list[str | int] | None) -> bytes:
    tensor_type = _int(1, elem_type)
    if dims is not None:
        shape = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
        tensor_type += _bytes(2, shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def onnx_gather_model(table: np.ndarray) -> bytes:
    """ModelProto: last_hidden_state = Gather(table, input_ids), shape (batch, seq, dim)."""
    table = np.ascontiguousarray(table, dtype="<f4")
    initializer = b"".join(_int(1, d) for d in table.shape) + _int(2, _FLOAT) + _bytes(8, "table")
    initializer += _bytes(9, table.tobytes())
    node = _bytes(1, "table") + _bytes(1, "input_ids") + _bytes(2, "last_hidden_state") + _bytes(4, "Gather")
    graph = (
        _bytes(1, node)
        + _bytes(2, "tiny")
        + _bytes(5, initializer)
        + _bytes(11, _value_info("input_ids", _INT64, ["batch", "seq"]))
        + _bytes(11, _value_info("attention_mask", _INT64, ["batch", "seq"]))
        + _bytes(12, _value_info("last_hidden_state", _FLOAT, ["batch", "seq", table.shape[1]]))
    )
    opset = _bytes(1, "") + _int(2, 13)
    return _int(1, 8) + _bytes(7, graph) + _bytes(8, opset)


def build_tiny_model(directory: Path, dimension: int = 384, seed: int = 7) -> np.ndarray:
    """Write the model directory fastembed expects for BAAI/bge-small-en-v1.5; return the table."""
    directory.mkdir(parents=True, exist_ok=True)
    table = np.random.default_rng(seed).standard_normal((len(WORDS), dimension)).astype(np.float32)
    (directory / "model_optimized.onnx").write_bytes(onnx_gather_model(table))
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tokenizer.normalizer = Lowercase()
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 32, "pad_token": "[PAD]"}))
    (directory / "special_tokens_map.json").write_text(json.dumps({"pad_token": "[PAD]", "unk_token": "[UNK]"}))
    return table


def expected_vector(table: np.ndarray, text: str) -> np.ndarray:
    """What the tiny model yields for `text`: the normalised row of its first word."""
    first = text.lower().split()[0]
    row = table[WORDS.index(first) if first in WORDS else WORDS.index("[UNK]")]
    return row / np.linalg.norm(row)


def build_cached_model(cache: Path, repository: str = "Qdrant/bge-small-en-v1.5-onnx-Q",
                       revision: str = "0123456789abcdef0123456789abcdef01234567") -> np.ndarray:
    """The tiny model laid out in `cache` as a Hugging Face download leaves it (what fastembed's cache
    holds for BAAI/bge-small-en-v1.5, whose files come from `repository`); return the table."""
    folder = cache / ("models--" + repository.replace("/", "--"))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(revision)
    table = build_tiny_model(folder / "snapshots" / revision)
    (folder / "snapshots" / revision / "config.json").write_text("{}")
    return table

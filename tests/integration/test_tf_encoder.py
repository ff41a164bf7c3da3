"""The TF SavedModel (through tensorflow_hub) computes the same embeddings as the numpy reference.

Texts: 512 committed sentences in the 16 MUSE languages, long texts built from them (cut by
the token budget), edge cases, and, when ../shared is present, SIB-200 dev sentences and
real video metadata built with `build_text`.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from worker.encoders import tf_hub
from worker.encoders.base import EXPORT_VERSION, muse_identity
from worker.encoders.reference import ReferenceEncoder
from worker.encoders.stamp import ExportStampError
from worker.encoders.tf_export import (
    STAMP_FILE,
    build_muse_module,
    ensure_savedmodel,
    expected_stamp,
    graph_token_ids,
)
from worker.encoders.tf_hub import BATCH_BUCKETS, TFHubEncoder, batch_bucket
from worker.settings import DEFAULT_SAVEDMODEL_DIR, REPO_ROOT
from worker.text import build_text

pytestmark = pytest.mark.integration

MUSE_LANGUAGES = {
    "ar",
    "zh-cn",
    "zh-tw",
    "nl",
    "en",
    "de",
    "fr",
    "it",
    "pt",
    "es",
    "ja",
    "ko",
    "ru",
    "pl",
    "th",
    "tr",
}
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "muse_sentences.txt"
EDGE_CASES = [
    "",
    "   ",
    "a",
    "🥧🤶 Natal 💰💵!",
    "x\x01\x02y",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ",
    "Joyeux NOE\u0308L",  # decomposed: one unknown "Ë" once normalised, two raw characters
    "A\u030a\u0301",  # three raw characters, one unknown normalised one
    "\u0675 \u0958ila 300\u02daF",  # each normalises to a known and an unknown character
    "😀" * 40,
    "ok " * 300,
]
MIN_COSINE = 0.999


def shared_data_dir() -> Path | None:
    candidates = [os.environ.get("SHARED_DATA_DIR", ""), str(REPO_ROOT.parent / "shared" / "data")]
    return next((Path(c) for c in candidates if c and Path(c).is_dir()), None)


def fixture_sentences() -> list[tuple[str, str]]:
    rows = [line.split("\t", 1) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line]
    return [(lang, text) for lang, text in rows]


def long_texts() -> list[str]:
    """One text per language, longer than any budget: twenty sentences joined."""
    by_lang: dict[str, list[str]] = {}
    for lang, text in fixture_sentences():
        by_lang.setdefault(lang, []).append(text)
    return [" ".join(sentences[:20]) for sentences in by_lang.values()]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def assert_equivalent(tf_encoder: TFHubEncoder, reference: ReferenceEncoder, texts: Sequence[str]) -> None:
    got, want = tf_encoder.encode(texts), reference.encode(texts)
    assert got.shape == want.shape == (len(texts), 512)
    assert got.dtype == np.float32
    cos = cosines(got, want)
    worst = int(np.argmin(cos))
    print(f"min cosine over {len(texts)} texts: {cos[worst]:.7f}")
    assert cos[worst] >= MIN_COSINE, f"text {worst} {texts[worst][:80]!r}: cosine {cos[worst]}"


@pytest.fixture(scope="session")
def savedmodel_dir() -> Path:
    return ensure_savedmodel(DEFAULT_SAVEDMODEL_DIR)


@pytest.fixture(scope="session")
def tf_encoder(savedmodel_dir: Path) -> TFHubEncoder:
    return TFHubEncoder(str(savedmodel_dir), max_tokens=128)


@pytest.fixture(scope="session")
def reference() -> ReferenceEncoder:
    return ReferenceEncoder(max_tokens=128)


def test_fixture_has_500_texts_in_the_16_muse_languages() -> None:
    rows = fixture_sentences()
    assert len(rows) >= 500
    assert {lang for lang, _ in rows} == MUSE_LANGUAGES


def test_tf_matches_reference_on_the_16_languages(
    tf_encoder: TFHubEncoder, reference: ReferenceEncoder
) -> None:
    assert_equivalent(tf_encoder, reference, [text for _, text in fixture_sentences()])


def test_tf_matches_reference_on_long_texts_and_edge_cases(
    tf_encoder: TFHubEncoder, reference: ReferenceEncoder
) -> None:
    texts = long_texts() + EDGE_CASES
    assert all(len(reference._tokenizer.encode(text)) > 128 for text in long_texts())
    assert_equivalent(tf_encoder, reference, texts)


def test_the_token_budget_is_a_runtime_setting(savedmodel_dir: Path, tf_encoder: TFHubEncoder) -> None:
    texts = long_texts()
    short_budget = TFHubEncoder(str(savedmodel_dir), max_tokens=32)
    assert_equivalent(short_budget, ReferenceEncoder(max_tokens=32), texts)
    assert cosines(short_budget.encode(texts), tf_encoder.encode(texts)).max() < 0.99  # it really cuts


def test_tf_matches_reference_on_shared_data(tf_encoder: TFHubEncoder, reference: ReferenceEncoder) -> None:
    data = shared_data_dir()
    if data is None:
        pytest.skip("shared data (../shared/data or SHARED_DATA_DIR) not present")
    texts: list[str] = []
    for path in sorted((data / "sib200").glob("*/dev.tsv")):
        with path.open(encoding="utf-8") as f:
            texts += [row["text"] for row in csv.DictReader(f, delimiter="\t")][:30]
    for name in ("train.jsonl", "dev_BR.jsonl"):
        with (data / "youtube" / name).open(encoding="utf-8") as f:
            rows = [json.loads(line) for _, line in zip(range(40), f, strict=False)]
        texts += [build_text(r["title"], r["tags"], r["description"]) for r in rows]
    assert_equivalent(tf_encoder, reference, texts)


# Newer than the tokenizer's normalisation tables: ICU's NFKC expands them ("令和", "MR"), nmt_nfkc does not.
NEWER_THAN_THE_TOKENIZER = {"\u32ff", "\U0001f16c"}


def test_every_code_point_gets_the_references_token_ids(reference: ReferenceEncoder) -> None:
    singles = [chr(c) for c in range(0x20000) if not 0xD800 <= c <= 0xDFFF]
    texts = singles + [f"a{c}b" for c in singles]
    got = graph_token_ids(build_muse_module(128), texts, 128)
    # The code point is the middle character of "c" and of "acb".
    differ = {text[len(text) // 2] for text, ids in zip(texts, got, strict=True) if reference.tokenize(text) != ids}
    assert differ <= NEWER_THAN_THE_TOKENIZER, sorted(f"U+{ord(c):04X}" for c in differ - NEWER_THAN_THE_TOKENIZER)[:20]


def test_a_text_in_a_batch_equals_the_text_alone(tf_encoder: TFHubEncoder) -> None:
    texts = [text for _, text in fixture_sentences()][::16] + long_texts()[:4] + EDGE_CASES[:4]
    batch = tf_encoder.encode(texts)
    alone = np.concatenate([tf_encoder.encode([text]) for text in texts])
    assert cosines(batch, alone).min() >= 0.9999


def test_batches_are_padded_to_buckets() -> None:
    assert [batch_bucket(n) for n in (1, 2, 8, 9, 33, 129, 513)] == [1, 8, 8, 32, 128, 512, 2048]
    assert batch_bucket(10_000) == BATCH_BUCKETS[-1]


def test_hub_load_serves_the_hub_call_contract(savedmodel_dir: Path) -> None:
    import tensorflow as tf
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  registers SentencepieceOp, as it must for the original hub model

    model = hub.load(str(savedmodel_dir))
    out = model(tf.constant(["Hello world", "Bonjour le monde", "こんにちは世界"]))
    assert out.dtype == tf.float32 and out.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(out.numpy(), axis=1), 1.0, rtol=1e-5)
    served = model.signatures["serving_default"](tf.constant(["Hello world"]))
    np.testing.assert_allclose(next(iter(served.values())).numpy()[0], out.numpy()[0], rtol=1e-5, atol=1e-6)


def test_export_cache_is_keyed_by_the_weights_hash(savedmodel_dir: Path, tmp_path: Path) -> None:
    cached = tmp_path / "muse"
    shutil.copytree(savedmodel_dir, cached)
    graph = cached / "saved_model.pb"
    before = graph.stat().st_ino

    assert ensure_savedmodel(cached) == cached
    assert graph.stat().st_ino == before  # current stamp: nothing rewritten

    (cached / STAMP_FILE).write_text("0" * 64 + " export-v1\n")  # as if the weights changed
    ensure_savedmodel(cached)
    assert graph.stat().st_ino != before  # re-exported and swapped in
    assert (cached / STAMP_FILE).read_text().strip() == expected_stamp()
    assert [p.name for p in tmp_path.iterdir()] == ["muse"]  # no temp dirs left behind


def test_a_copied_export_loads_only_with_the_stamp_of_the_installed_weights_and_export(
    savedmodel_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "muse-copy"
    shutil.copytree(savedmodel_dir, copy)
    loaded = TFHubEncoder(str(copy), max_tokens=128, max_batch=1)
    assert loaded.identity == muse_identity() == ReferenceEncoder().identity
    assert loaded.identity.short.endswith(f".export-v{EXPORT_VERSION}")
    for stamp in (None, f"{muse_identity().weights_sha256} export-v{EXPORT_VERSION - 1}"):
        if stamp is None:
            (copy / STAMP_FILE).unlink()
        else:
            (copy / STAMP_FILE).write_text(stamp + "\n")
        with pytest.raises(ExportStampError, match="export-muse --out"):
            TFHubEncoder(str(copy), max_tokens=128, max_batch=1)


def test_the_default_handle_named_relatively_is_re_exported_when_stale(
    savedmodel_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / ".cache" / "muse-savedmodel"
    shutil.copytree(savedmodel_dir, default)
    (default / STAMP_FILE).write_text(f"{muse_identity().weights_sha256} export-v{EXPORT_VERSION - 1}\n")
    before = (default / "saved_model.pb").stat().st_ino
    monkeypatch.setattr(tf_hub, "DEFAULT_SAVEDMODEL_DIR", default)
    monkeypatch.chdir(tmp_path)
    encoder = TFHubEncoder(".cache/muse-savedmodel", max_tokens=128, max_batch=1)  # the README's default
    assert (default / STAMP_FILE).read_text().strip() == expected_stamp()
    assert (default / "saved_model.pb").stat().st_ino != before  # re-exported, not loaded stale
    assert encoder.handle == str(default.resolve()) and encoder.identity == muse_identity()

"""The encoder identity names what computes the embeddings; a local SavedModel must prove it with its stamp.

No TensorFlow here: `open_handle` decides what a handle loads and its identity before anything is
loaded (tests/integration/test_tf_encoder.py loads real exports).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from worker.cache import text_namespace
from worker.classify import load_classifier
from worker.encoders import tf_export, tf_hub
from worker.encoders.base import EXPORT_VERSION, EncoderIdentity, muse_identity
from worker.encoders.stamp import STAMP_FILE, ExportStampError, expected_stamp, is_current
from worker.encoders.tf_hub import open_handle
from worker.settings import REPO_ROOT

HUB_URL = "https://tfhub.dev/google/universal-sentence-encoder-multilingual/3"


def fake_export(folder: Path, stamp: str | None) -> Path:
    """A directory shaped like an export (a graph file and maybe a stamp); nothing here loads it."""
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph")
    if stamp is not None:
        (folder / STAMP_FILE).write_text(stamp + "\n")
    return folder


def test_the_identity_names_the_export_version_so_cache_namespaces_follow_the_graph() -> None:
    identity = muse_identity()
    assert identity.graph == f"export-v{EXPORT_VERSION}"
    assert identity.short == f"{identity.name}@{identity.weights_sha256[:8]}.export-v{EXPORT_VERSION}"
    bumped = replace(identity, graph=f"export-v{EXPORT_VERSION + 1}")
    assert text_namespace(bumped, 256) != text_namespace(identity, 256)
    assert bumped.same_weights(identity) and bumped != identity


@pytest.mark.parametrize("model", ["starter", "sib200"])
def test_the_shipped_heads_which_record_name_and_weights_only_still_load(model: str) -> None:
    head = load_classifier(REPO_ROOT / "models" / model, muse_identity())
    assert head.encoder == EncoderIdentity(muse_identity().name, muse_identity().weights_sha256)


def test_a_local_export_with_the_expected_stamp_loads_from_its_resolved_directory(tmp_path: Path) -> None:
    export = fake_export(tmp_path / "exports" / "muse", expected_stamp())
    (tmp_path / "current").symlink_to(export)
    path, identity = open_handle(str(tmp_path / "current"))
    assert path == str(export.resolve()) and identity == muse_identity()
    assert is_current(export)


@pytest.mark.parametrize(
    ("stamp", "message"),
    [
        (None, "no weights.sha256 stamp"),
        (f"{muse_identity().weights_sha256} export-v{EXPORT_VERSION - 1}", f"export version {EXPORT_VERSION}"),
        (f"{'0' * 64} export-v{EXPORT_VERSION}", "installed weights' sha256"),
    ],
)
def test_a_local_export_without_the_expected_stamp_is_refused(tmp_path: Path, stamp: str | None, message: str) -> None:
    export = fake_export(tmp_path / "copy", stamp)
    with pytest.raises(ExportStampError, match=message) as refused:
        open_handle(str(export))
    assert "python -m worker export-muse --out" in str(refused.value)


def test_a_directory_that_is_no_savedmodel_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportStampError, match="not a SavedModel directory"):
        open_handle(str(tmp_path / "missing"))


def test_the_default_export_named_relatively_is_ensured_before_it_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / ".cache" / "muse-savedmodel"
    monkeypatch.setattr(tf_hub, "DEFAULT_SAVEDMODEL_DIR", default)
    ensured: list[Path] = []

    def export(out_dir: Path) -> Path:  # what ensure_savedmodel leaves: a current export
        ensured.append(out_dir)
        return fake_export(out_dir, expected_stamp())

    monkeypatch.setattr(tf_export, "ensure_savedmodel", export)
    monkeypatch.chdir(tmp_path)
    path, identity = open_handle(".cache/muse-savedmodel")  # the README's literal default
    assert ensured == [default.resolve()] and path == str(default.resolve()) and identity == muse_identity()


def test_a_remote_handle_gets_its_own_identity_and_so_its_own_cache_namespace() -> None:
    handle, identity = open_handle(HUB_URL)
    assert handle == HUB_URL
    assert identity.graph.startswith("hub-") and identity.short != muse_identity().short
    assert identity.same_weights(muse_identity())  # heads trained on the port still load (docs/encoder.md)

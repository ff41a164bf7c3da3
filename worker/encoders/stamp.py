"""The export stamp: what a local MUSE SavedModel directory was exported from, checked before it loads.

`export-muse` writes `weights.sha256` next to `saved_model.pb`: the SHA-256 of the installed
`sp.model` + `weights.npz` (`muse_identity().weights_sha256`) and `export-vN`, the graph version.
A local handle loads only when its stamp names the installed weights and this code's
`EXPORT_VERSION`; the encoder's identity is then `muse_identity()`. Reading the stamp needs no
TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

from worker.encoders.base import EXPORT_VERSION, EncoderIdentity, muse_identity

STAMP_FILE = "weights.sha256"
GRAPH_FILE = "saved_model.pb"


class ExportStampError(RuntimeError):
    """A local SavedModel without a stamp, or stamped for other weights or another export version."""


def expected_stamp() -> str:
    return f"{muse_identity().weights_sha256} export-v{EXPORT_VERSION}"


def read_stamp(out_dir: Path) -> str | None:
    """The stamp of a SavedModel directory, None when it has no SavedModel or no stamp."""
    stamp = out_dir / STAMP_FILE
    if not (out_dir / GRAPH_FILE).is_file() or not stamp.is_file():
        return None
    return stamp.read_text(encoding="utf-8").strip()


def is_current(out_dir: Path) -> bool:
    """True when out_dir holds a SavedModel exported from the installed weights by this export version."""
    return read_stamp(out_dir) == expected_stamp()


def verify_export(out_dir: Path) -> EncoderIdentity:
    """The identity of the SavedModel in out_dir; ExportStampError unless its stamp is the expected one."""
    fix = f"re-export it with `python -m worker export-muse --out {out_dir}`"
    if not (out_dir / GRAPH_FILE).is_file():
        raise ExportStampError(f"encoder handle {out_dir}: no {GRAPH_FILE}, not a SavedModel directory; {fix}")
    found = read_stamp(out_dir)
    if found is None:
        raise ExportStampError(
            f"encoder handle {out_dir}: no {STAMP_FILE} stamp, so the weights and graph version it was "
            f"exported from are unknown; {fix}"
        )
    expected = expected_stamp()
    if found != expected:
        raise ExportStampError(
            f"encoder handle {out_dir} was exported as {found!r}, this worker expects {expected!r} "
            f"(installed weights' sha256, export version {EXPORT_VERSION}); {fix}"
        )
    return muse_identity()

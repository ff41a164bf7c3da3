"""Write the model artifact: `head.keras` plus `model.json`, with a version derived from both.

`version` = `head-<yyyymmdd>-<first 10 hex of sha256>` over the canonical JSON of every
other field in `model.json` (labels, thresholds, prior, encoder, data fingerprint,
hyper-parameters, metrics) and the weight arrays themselves (not the `.keras` zip, whose
bytes carry a save timestamp). The layout is documented in docs/training.md.

`fitted_items.txt` lists the items (video ids, SIB-200 index ids) the head was fitted on, one per
line: `evaluate` and `compare` leave those rows out. It is derived from the training data, which
the fingerprint in `model.json` already covers, so it is not part of the version.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from worker.classify import HEAD_FILE, MODEL_JSON

FORMAT = 1
FITTED_ITEMS = "fitted_items.txt"


def weights_digest(arrays: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()


def derive_version(meta: dict[str, Any], weights_sha256: str, when: datetime) -> str:
    canonical = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8") + weights_sha256.encode()).hexdigest()
    return f"head-{when:%Y%m%d}-{digest[:10]}"


def read_fitted_items(model_dir: Path) -> frozenset[str]:
    """The items a model was fitted on; none recorded (an artifact from before the file) -> empty."""
    path = Path(model_dir) / FITTED_ITEMS
    return frozenset(path.read_text(encoding="utf-8").splitlines()) if path.exists() else frozenset()


def read_trained_groups(model_dir: Path) -> frozenset[str]:
    """The languages / regions a model was fitted on rows of (`model.json` `training_data.groups`); for
    heads written before it, the SIB-200 language folders named in `sources`."""
    training = json.loads((Path(model_dir) / MODEL_JSON).read_text(encoding="utf-8")).get("training_data", {})
    return frozenset(training.get("groups", training.get("sources", [])))


class OutDirRefused(ValueError):
    """`--out` names something a new head must not replace."""


def check_out_dir(out_dir: Path) -> None:
    """Refuse an `--out` that is not a new folder or a model folder: replacing it would delete what it holds."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink():
        raise OutDirRefused(f"{out_dir} is a symbolic link (the one a worker watches?): train into a new folder, "
                            "then point the link at it")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutDirRefused(f"{out_dir} is a file, not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MODEL_JSON).exists():
        raise OutDirRefused(f"{out_dir} holds files but no {MODEL_JSON}: it is not a model folder, and training "
                            "into it would replace everything in it; name a new folder")


def write_artifact(out_dir: Path, model: Any, meta: dict[str, Any], fitted_items: Iterable[str]) -> dict[str, Any]:
    """Save atomically-ish: build in a temporary sibling folder, then replace `out_dir` (a model folder, or new).

    Files and folders of the old model folder that the new head does not write (an ATTRIBUTION, a report)
    are kept."""
    check_out_dir(out_dir)
    when = datetime.now(UTC)
    weights_sha = weights_digest([w.numpy() for w in model.weights])
    body = {"format": FORMAT, **meta, "weights_file": HEAD_FILE, "weights_sha256": weights_sha}
    full = {
        "version": derive_version(body, weights_sha, when),
        "created_at": when.isoformat(timespec="seconds"),
        **body,
    }
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; an artifact is meant to be shared
    model.save(staging / HEAD_FILE)
    (staging / MODEL_JSON).write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (staging / FITTED_ITEMS).write_text("".join(f"{item}\n" for item in sorted(set(fitted_items))), encoding="utf-8")
    for extra in out_dir.iterdir() if out_dir.exists() else ():
        if not (staging / extra.name).exists():
            copy = shutil.copytree if extra.is_dir() else shutil.copy2
            copy(extra, staging / extra.name)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    return full

"""Rollout: hot-swap the classifier head when `WORKER_MODEL_DIR` points at a new version.

The worker watches the path (every `WORKER_MODEL_WATCH_INTERVAL_S`): a change of the
directory it resolves to (ML engineers flip a symlink such as `models/current`
atomically) or of its `model.json` / `head.keras` loads the new head. The path is resolved
once per check and the fingerprint, `model.json` and `head.keras` all come from that one
directory, so a flip during the load cannot pair one version's labels and thresholds with
another's weights. The swap happens between batches in the loop's single thread, so a
batch in flight finishes on the old version and every message is scored by exactly one
version. A head that fails to load (corrupt, malformed, trained for another encoder, or for
another text budget or embed views) is refused with an error log; the worker keeps the
version it has. A head whose files change while it loads (edited in place) is not swapped
in: the next check loads it again. A head with another label set is swapped in, with a warning
(`model_labels_changed`) naming the labels added and removed.
"""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from worker.classify import HEAD_FILE, MODEL_JSON, Classifier, load_classifier
from worker.encoders import EncoderIdentity

log = structlog.get_logger(__name__)
FileStamp = tuple[int, int, int]  # inode, mtime (ns), size
Fingerprint = tuple[str, FileStamp, FileStamp]


def file_stamp(path: Path, required: bool) -> FileStamp:
    try:
        stat = path.stat()
    except FileNotFoundError:
        if required:
            raise
        return (0, 0, 0)  # a missing head.keras is the loader's error to report
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def fingerprint(resolved: Path) -> Fingerprint:
    """What identifies the head in `resolved` (a directory already resolved: no symlink in the path)."""
    return str(resolved), file_stamp(resolved / MODEL_JSON, True), file_stamp(resolved / HEAD_FILE, False)


def check_same_text_recipe(current: Classifier, candidate: Classifier) -> None:
    """Texts and cached embeddings are built for the serving recipe: another one needs a restart."""
    if (candidate.text_max_chars, candidate.max_tokens) != (current.text_max_chars, current.max_tokens):
        raise ValueError(
            f"{candidate.version} was trained on {candidate.text_max_chars} characters / {candidate.max_tokens} "
            f"tokens, the head it would replace ({current.version}) on {current.text_max_chars} / "
            f"{current.max_tokens}: the worker builds texts and cache keys for the head it started with, so restart "
            "the workers to roll it out"
        )
    if candidate.embed_views != current.embed_views:
        raise ValueError(
            f"{candidate.version} is served on the full text with views {list(candidate.embed_views)}, the head it "
            f"would replace ({current.version}) with {list(current.embed_views)}: restart the workers to roll it out"
        )


def warn_if_labels_change(current: Classifier, candidate: Classifier) -> None:
    """Another label set is served (consumers treat labels as open strings), but say what changed: a
    recommender keyed on the old names stops seeing the removed ones from this event on."""
    added = [label for label in candidate.labels if label not in current.labels]
    removed = [label for label in current.labels if label not in candidate.labels]
    if added or removed:
        log.warning("model_labels_changed", old=current.version, new=candidate.version, added=added,
                    removed=removed)


class ModelWatcher:
    def __init__(self, model_dir: Path, encoder: EncoderIdentity, interval_s: float) -> None:
        self._model_dir = model_dir
        self._encoder = encoder
        self._interval_s = interval_s
        resolved = model_dir.resolve()
        # taken before the load: a change during it is seen, and loaded, at the next check
        self._seen = fingerprint(resolved)
        self.current: Classifier = load_classifier(resolved, encoder)
        self._next_check = time.monotonic() + interval_s

    def poll(self, now: float) -> Classifier | None:
        """The new head when the watched path changed since the last check, else None."""
        if now < self._next_check:
            return None
        self._next_check = now + self._interval_s
        try:
            resolved = self._model_dir.resolve()
            seen = fingerprint(resolved)
        except (OSError, RuntimeError):  # mid-flip, removed, or a symlink loop: keep serving the loaded version
            return None
        if seen == self._seen:
            return None
        try:
            candidate = load_classifier(resolved, self._encoder)
            check_same_text_recipe(self.current, candidate)
        except Exception as error:  # noqa: BLE001 - a bad artifact must not stop the worker
            self._seen = seen  # refused once, not again at every check
            log.error("model_swap_refused", path=seen[0], error=str(error), keeping=self.current.version)
            return None
        if not self._settled(resolved, seen):
            return None
        self._seen = seen
        log.info("model_swapped", old=self.current.version, new=candidate.version, path=seen[0])
        warn_if_labels_change(self.current, candidate)
        self.current = candidate
        return candidate

    @staticmethod
    def _settled(resolved: Path, seen: Fingerprint) -> bool:
        """False when the head's files changed while it loaded (written in place): load it again next check."""
        try:
            return fingerprint(resolved) == seen
        except OSError:
            return False

"""Rollout: hot-swap the classifier head when `WORKER_MODEL_DIR` points at a new version.

The worker watches the path (every `WORKER_MODEL_WATCH_INTERVAL_S`): a change of the
directory it resolves to (ML engineers flip a symlink such as `models/current`
atomically) or of its `model.json` loads the new head. The swap happens between batches
in the loop's single thread, so a batch in flight finishes on the old version and every
message is scored by exactly one version. A head that fails to load (corrupt, trained for
another encoder, or for another text budget or embed views) is refused with an error log; the worker keeps
the version it has.
"""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from worker.classify import Classifier, load_classifier
from worker.encoders import EncoderIdentity

log = structlog.get_logger(__name__)
Fingerprint = tuple[str, int, int]


def fingerprint(model_dir: Path) -> Fingerprint:
    resolved = model_dir.resolve()
    stat = (resolved / "model.json").stat()
    return str(resolved), stat.st_mtime_ns, stat.st_size


def check_same_text_recipe(current: Classifier, candidate: Classifier) -> None:
    """Texts and cached embeddings are built for the serving recipe: another one needs a restart."""
    if (candidate.text_max_chars, candidate.max_tokens) != (current.text_max_chars, current.max_tokens):
        raise ValueError(
            f"{candidate.version} was trained on {candidate.text_max_chars} characters / {candidate.max_tokens} "
            f"tokens, the worker serves {current.text_max_chars} / {current.max_tokens}: restart the workers to roll "
            "it out"
        )
    if candidate.embed_views != current.embed_views:
        raise ValueError(
            f"{candidate.version} is served on the full text with views {list(candidate.embed_views)}, the worker "
            f"embeds it with {list(current.embed_views)}: restart the workers to roll it out"
        )


class ModelWatcher:
    def __init__(self, model_dir: Path, encoder: EncoderIdentity, interval_s: float) -> None:
        self._model_dir = model_dir
        self._encoder = encoder
        self._interval_s = interval_s
        self._seen = fingerprint(model_dir)
        self.current: Classifier = load_classifier(model_dir, encoder)
        self._next_check = time.monotonic() + interval_s

    def poll(self, now: float) -> Classifier | None:
        """The new head when the watched path changed since the last check, else None."""
        if now < self._next_check:
            return None
        self._next_check = now + self._interval_s
        try:
            seen = fingerprint(self._model_dir)
        except OSError:  # mid-flip or removed: keep serving the loaded version
            return None
        if seen == self._seen:
            return None
        self._seen = seen
        try:
            candidate = load_classifier(self._model_dir, self._encoder)
            check_same_text_recipe(self.current, candidate)
        except Exception as error:  # noqa: BLE001 - a bad artifact must not stop the worker
            log.error("model_swap_refused", path=seen[0], error=str(error), keeping=self.current.version)
            return None
        log.info("model_swapped", old=self.current.version, new=candidate.version, path=seen[0])
        self.current = candidate
        return candidate

"""The language of an upload: as given by the uploader, else detected from its text (py3langid)."""

from __future__ import annotations

from functools import lru_cache

# The start of the model text (title, then tags) is enough to tell the language; py3langid's
# cost grows quickly with length (about 120 us at 200 characters, 950 us at 512).
DETECTION_CHARS = 200


def detect_language(text: str) -> str:
    """ISO 639-1 code of the most likely language (97 languages)."""
    return _detect(text[:DETECTION_CHARS])


@lru_cache(maxsize=65_536)  # re-uploads repeat texts: like their embeddings, detect them once
def _detect(start: str) -> str:
    import py3langid

    return str(py3langid.classify(start)[0])


def load_language_model() -> None:
    """Load py3langid's model now (about a second) rather than inside the first batch."""
    import py3langid

    py3langid.classify("warm-up")


def language_of(given: str | None, text: str) -> str:
    return given or detect_language(text)

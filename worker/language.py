"""The language of an upload: as given by the uploader, else detected from its text (py3langid)."""

from __future__ import annotations


def detect_language(text: str) -> str:
    """ISO 639-1 code of the most likely language (97 languages)."""
    import py3langid

    return str(py3langid.classify(text)[0])


def language_of(given: str | None, text: str) -> str:
    return given or detect_language(text)

import json
from pathlib import Path

import py3langid
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker import language
from worker.language import DETECTION_CHARS, detect_languages, languages_of
from worker.text import build_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def py3langid_says(text: str) -> str:
    return str(py3langid.classify(text[:DETECTION_CHARS])[0])


def fixture_texts() -> list[str]:
    sentences = [line.split("\t", 1)[1] for line in (FIXTURES / "muse_sentences.txt").read_text().splitlines()]
    # long texts too (past the detection budget), all-caps ones, and texts with no n-gram features
    return [*sentences, " ".join(sentences[:12]), *(s.upper() for s in sentences[::40]), "", " ", "12345", "!!!"]


@pytest.mark.parametrize(("text", "code"), [
    ("Résumé du débat entre les candidats à l'élection présidentielle", "fr"),
    ("Alle Tore und Highlights vom Spitzenspiel des Spieltags", "de"),
    ("ギターの持ち方とコードの基本を分かりやすく解説します", "ja"),
    ("Главные события дня в России и мире", "ru"),
])
def test_detects_the_language(text: str, code: str) -> None:
    assert detect_languages([text]) == [code]


def test_a_batch_gets_what_py3langid_gives_each_text() -> None:
    texts = fixture_texts()
    language._memo.clear()
    assert detect_languages(texts) == [py3langid_says(t) for t in texts]


def test_real_video_texts_get_what_py3langid_gives(shared_data: Path) -> None:
    rows = [json.loads(line) for name in ("train.jsonl", "dev_BR.jsonl")
            for line in (shared_data / "youtube" / name).open(encoding="utf-8")]
    texts = [build_text(r["title"], r["tags"], r["description"], 1024) for r in rows]
    language._memo.clear()
    detected = [code for start in range(0, len(texts), 128) for code in detect_languages(texts[start:start + 128])]
    assert detected == [py3langid_says(t) for t in texts]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=8))
def test_any_batch_of_any_text_matches_py3langid(texts: list[str]) -> None:
    language._memo.clear()
    assert detect_languages(texts) == [py3langid_says(t) for t in texts]


def test_repeated_texts_are_detected_once_and_answered_from_memory() -> None:
    language._memo.clear()
    german, french = "Alle Tore und Highlights vom Spitzenspiel", "Résumé du débat entre les candidats"
    assert detect_languages([german, german, french]) == ["de", "de", "fr"]
    assert list(language._memo) == [german, french]
    language._memo[french] = "remembered"  # proves the next answer comes from memory
    assert detect_languages([french]) == ["remembered"]
    language._memo.clear()


def test_the_uploaders_language_wins() -> None:
    texts = ["Alle Tore und Highlights vom Spitzenspiel", "Résumé du débat entre les candidats",
             "Главные события дня в России"]
    assert languages_of(["pt-BR", None, ""], texts) == ["pt-BR", "fr", "ru"]

import pytest

from worker.language import detect_language, language_of


@pytest.mark.parametrize(("text", "code"), [
    ("Résumé du débat entre les candidats à l'élection présidentielle", "fr"),
    ("Alle Tore und Highlights vom Spitzenspiel des Spieltags", "de"),
    ("ギターの持ち方とコードの基本を分かりやすく解説します", "ja"),
    ("Главные события дня в России и мире", "ru"),
])
def test_detects_the_language(text: str, code: str) -> None:
    assert detect_language(text) == code


def test_the_uploaders_language_wins() -> None:
    assert language_of("pt-BR", "Alle Tore und Highlights vom Spitzenspiel") == "pt-BR"

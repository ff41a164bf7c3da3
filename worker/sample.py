"""Sample uploads in many languages, and the producer side of `VideoUploaded` events.

`produce_uploads` is what an upload pipeline does: Avro-encode each event (the worker's
own codec, so the wire format follows the settings) and produce it keyed by video_id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Producer

from worker.avro import load_schema, make_codec
from worker.produce import idempotent_producer_config
from worker.records import VideoUploaded
from worker.settings import Settings

# (language, title, tags, description): realistic metadata, one or two per language.
SAMPLES: list[tuple[str, str, list[str], str]] = [
    ("en", "Top 10 goals of the Premier League season", ["football", "soccer", "premier league", "goals"],
     "The best goals of the season, from long-range strikes to bicycle kicks. Subscribe for more!"),
    ("en", "How to make fresh pasta at home", ["cooking", "recipe", "#ItalianFood"],
     "A simple recipe for homemade tagliatelle with only flour and eggs. https://example.com/recipe"),
    ("fr", "Le nouveau clip officiel de notre groupe", ["musique", "clip officiel", "rap français"],
     "Découvrez notre nouveau single, disponible sur toutes les plateformes. Abonnez-vous !"),
    ("fr", "Débat présidentiel : les moments clés", ["politique", "élection", "débat"],
     "Résumé du débat entre les candidats à l'élection présidentielle."),
    ("de", "Bundesliga Highlights: Bayern gegen Dortmund", ["Fußball", "Bundesliga", "Tore"],
     "Alle Tore und Highlights vom Spitzenspiel des Spieltags."),
    ("de", "Die Wahrheit über Elektroautos im Winter", ["Elektroauto", "Test", "Reichweite"],
     "Wir testen die Reichweite von fünf Elektroautos bei minus zehn Grad."),
    ("es", "Receta fácil de tortilla de patatas", ["cocina", "receta", "tortilla española"],
     "Aprende a preparar la auténtica tortilla de patatas en 15 minutos."),
    ("es", "Gameplay completo de la nueva expansión", ["videojuegos", "gameplay", "PS5"],
     "Jugamos las primeras horas de la expansión, sin comentarios."),
    ("ja", "初心者のためのギター講座 第1回", ["ギター", "音楽", "レッスン"],
     "ギターの持ち方とコードの基本を分かりやすく解説します。"),
    ("ja", "東京の隠れた名所を巡る旅", ["旅行", "東京", "観光"], "地元の人しか知らない東京のスポットを紹介します。"),
    ("ru", "Новости дня: главное за сутки", ["новости", "политика", "экономика"],
     "Главные события дня в России и мире."),
    ("ru", "Обзор нового смартфона: стоит ли покупать?", ["обзор", "смартфон", "технологии"],
     "Подробный обзор камеры, батареи и производительности."),
    ("ar", "أهداف مباراة الهلال والنصر", ["كرة القدم", "الدوري السعودي", "أهداف"], "ملخص كامل لأهداف المباراة."),
    ("ar", "طريقة عمل الكنافة بالجبن", ["طبخ", "حلويات", "وصفة"], "وصفة سهلة للكنافة في المنزل خطوة بخطوة."),
    ("zh", "新手也能学会的红烧肉做法", ["美食", "做菜", "家常菜"], "教你在家做出好吃的红烧肉，简单易学。"),
    ("zh", "最新科技新闻：人工智能的突破", ["科技", "人工智能", "新闻"], "本周最重要的科技新闻汇总。"),
    ("pt", "Melhores momentos do clássico no Maracanã", ["futebol", "gols", "brasileirão"],
     "Confira os gols e os melhores lances da partida."),
    ("it", "Come truccarsi per una serata speciale", ["trucco", "makeup", "tutorial"],
     "Un tutorial passo dopo passo per un trucco elegante."),
    ("ko", "신작 게임 첫 플레이 리뷰", ["게임", "리뷰", "플레이"], "새로 출시된 게임을 직접 플레이해 봤습니다."),
    ("tr", "Komik anlar derlemesi 2024", ["komedi", "eğlence", "komik"], "Yılın en komik anlarını bir araya getirdik."),
]


def sample_uploads(count: int | None = None, prefix: str = "sample") -> list[VideoUploaded]:
    """`count` uploads cycling through SAMPLES (all of them once by default), with fresh ids."""
    count = len(SAMPLES) if count is None else count
    now_ms = int(time.time() * 1000)
    uploads = []
    for i in range(count):
        lang, title, tags, description = SAMPLES[i % len(SAMPLES)]
        uploads.append(VideoUploaded(
            video_id=f"{prefix}-{i}-{uuid.uuid4().hex[:8]}", title=title, description=description,
            tags=tuple(tags), language=None, channel_id=f"channel-{lang}", uploaded_at_ms=now_ms,
        ))
    return uploads


def upload_record(upload: VideoUploaded) -> dict[str, Any]:
    return {
        "video_id": upload.video_id, "title": upload.title, "description": upload.description,
        "tags": list(upload.tags), "language": upload.language, "channel_id": upload.channel_id,
        "uploaded_at": upload.uploaded_at_ms,
    }


def produce_uploads(settings: Settings, uploads: Iterable[VideoUploaded], producer: Producer | None = None) -> int:
    """Produce each upload to the input topic and wait for the broker's acknowledgment."""
    producer = producer or Producer(idempotent_producer_config(settings))
    codec, schema, topic = make_codec(settings), load_schema("VideoUploaded"), settings.worker_input_topic
    count = 0
    for upload in uploads:
        value, headers = codec.dumps(upload_record(upload), schema, topic)
        while True:
            try:
                producer.produce(topic, value, upload.video_id.encode(), headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
    if producer.flush(60):
        raise RuntimeError("some uploads were not acknowledged by the broker within 60 s")
    return count

"""The report's words: reports/labels.yml (`text` and `definitions`), English and Finnish, via core/render.py."""

from __future__ import annotations

from pathlib import Path

from core import render

LABELS = Path(__file__).resolve().parent / "labels.yml"


def label(key: str, lang: str, **values) -> str:
    """The report's words for `key` (reports/labels.yml `text`); an unknown key, a new segment value, as it is."""
    return render.load_labels(LABELS, "text").text(key, lang, **values)


def words(lang: str) -> dict:
    """Every `text` entry in `lang`: what a template reads as `t.title`."""
    return render.load_labels(LABELS, "text").in_lang(lang)


def definitions(lang: str) -> list[tuple[str, str]]:
    """The appendix: (term, paragraph) in the order of reports/labels.yml `definitions`."""
    return [(entry[lang]["term"], entry[lang]["text"]) for entry in render.read_yaml(LABELS)["definitions"].values()]

"""A small bilingual sample corpus the project writes itself, for ``make demo`` and the tests.

Sentences come from templates with a fixed seed, so the corpus is the same on every machine. It holds a
few repeated facts ("paris is the capital of france", "北京是中国的首都") that a tiny model learns within a
couple of minutes, which makes fill-mask predictions worth looking at.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

__all__ = [
    "chinese_sentences",
    "english_sentences",
    "write_demo_corpus",
    "write_demo_labelled",
]

_EN_FACTS = [
    ("paris", "france"),
    ("berlin", "germany"),
    ("rome", "italy"),
    ("madrid", "spain"),
    ("tokyo", "japan"),
    ("beijing", "china"),
    ("london", "england"),
    ("moscow", "russia"),
]
_EN_ANIMALS = ["cat", "dog", "bird", "horse", "rabbit", "mouse", "cow", "sheep"]
_EN_SOUNDS = {
    "cat": "meows",
    "dog": "barks",
    "bird": "sings",
    "horse": "neighs",
    "cow": "moos",
    "sheep": "bleats",
}
_EN_PLACES = ["garden", "kitchen", "park", "house", "forest", "river", "market", "school"]
_EN_VERBS = ["sees", "likes", "follows", "chases", "watches", "finds"]
_EN_ADJ = ["small", "big", "old", "young", "quiet", "happy", "brown", "white"]
_ZH_FACTS = [
    ("北京", "中国"),
    ("东京", "日本"),
    ("巴黎", "法国"),
    ("伦敦", "英国"),
    ("柏林", "德国"),
    ("罗马", "意大利"),
]
_ZH_PEOPLE = ["小明", "小红", "老师", "医生", "学生", "妈妈", "爸爸", "朋友"]
# Names that the NER set tags as PER (and recipes/demo.py showcases): the corpus must hold their characters,
# or the vocabulary trained on it maps them to [UNK].
_ZH_NAMES = ["张三", "李四"]
_ZH_FOODS = ["苹果", "米饭", "面条", "饺子", "西瓜", "鸡蛋", "豆腐", "包子"]
_ZH_PLACES = ["学校", "公园", "医院", "商店", "图书馆", "家里", "饭馆", "车站"]
_ZH_WEATHER = ["晴天", "下雨", "下雪", "刮风", "多云"]


def english_sentences(n: int, *, seed: int = 0) -> list[str]:
    """``n`` English lines (1-3 sentences each) from templates."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.random()
            if kind < 0.3:
                city, country = rng.choice(_EN_FACTS)
                parts.append(
                    rng.choice(
                        [f"{city} is the capital of {country}.", f"the capital of {country} is {city}."]
                    )
                )
            elif kind < 0.5:
                animal = rng.choice(list(_EN_SOUNDS))
                parts.append(f"the {animal} {_EN_SOUNDS[animal]} in the {rng.choice(_EN_PLACES)}.")
            else:
                a, b = rng.sample(_EN_ANIMALS, 2)
                parts.append(
                    f"the {rng.choice(_EN_ADJ)} {a} {rng.choice(_EN_VERBS)} the {b} near the {rng.choice(_EN_PLACES)}."
                )
        out.append(" ".join(parts))
    return out


def chinese_sentences(n: int, *, seed: int = 1) -> list[str]:
    """``n`` Chinese lines (1-3 sentences each) from templates."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.random()
            if kind < 0.3:
                city, country = rng.choice(_ZH_FACTS)
                parts.append(rng.choice([f"{city}是{country}的首都。", f"{country}的首都是{city}。"]))
            elif kind < 0.6:
                parts.append(f"{rng.choice(_ZH_PEOPLE)}在{rng.choice(_ZH_PLACES)}吃{rng.choice(_ZH_FOODS)}。")
            elif kind < 0.8:
                parts.append(
                    f"今天{rng.choice(_ZH_WEATHER)}，{rng.choice(_ZH_PEOPLE)}去{rng.choice(_ZH_PLACES)}。"
                )
            else:  # the words of the NER set: people at work in a city, and what they like
                person = rng.choice(_ZH_PEOPLE + _ZH_NAMES)
                if rng.random() < 0.5:
                    parts.append(f"{person}在{rng.choice(_ZH_FACTS)[0]}工作。")
                else:
                    parts.append(f"{person}喜欢{rng.choice(_ZH_FOODS + [c for _, c in _ZH_FACTS])}。")
        out.append("".join(parts))
    return out


def write_demo_corpus(directory: str | os.PathLike, *, n_lines: int = 3000, seed: int = 0) -> dict[str, Path]:
    """Write ``train.txt`` and ``valid.txt`` (English and Chinese lines interleaved) into ``directory``.

    Returns:
        ``{"train": path, "validation": path}``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    en = english_sentences(n_lines, seed=seed)
    zh = chinese_sentences(n_lines, seed=seed + 1)
    lines = [x for pair in zip(en, zh, strict=True) for x in pair]
    n_valid = max(2, len(lines) // 20)
    paths = {"train": directory / "train.txt", "validation": directory / "valid.txt"}
    paths["train"].write_text("\n".join(lines[n_valid:]) + "\n", encoding="utf-8")
    paths["validation"].write_text("\n".join(lines[:n_valid]) + "\n", encoding="utf-8")
    return paths


def write_demo_labelled(directory: str | os.PathLike, *, n: int = 400, seed: int = 0) -> dict[str, Path]:
    """Write small labelled sets built from the same templates (English and Chinese mixed):

    * ``topic_{train,dev,test}.jsonl``: ``{"text", "label"}`` with labels ``geo`` (capitals), ``animal``,
      ``daily`` (meals and weather);
    * ``ner_{train,dev,test}.txt``: CoNLL ``token<TAB>tag``, BIO, types ``LOC`` and ``PER``; English by word,
      Chinese by character.

    Returns:
        Paths by name (``topic_train``, ``ner_dev``, ...).
    """
    import json

    rng = random.Random(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    def topic_example() -> dict:
        kind = rng.choice(["geo", "animal", "daily"])
        zh = rng.random() < 0.5
        if kind == "geo":
            city, country = rng.choice(_ZH_FACTS if zh else _EN_FACTS)
            text = f"{city}是{country}的首都。" if zh else f"the capital of {country} is {city}."
        elif kind == "animal":
            if zh:
                text = f"{rng.choice(['小猫', '小狗', '小鸟', '马'])}在{rng.choice(_ZH_PLACES)}玩。"
            else:
                animal = rng.choice(list(_EN_SOUNDS))
                text = f"the {rng.choice(_EN_ADJ)} {animal} {_EN_SOUNDS[animal]} in the {rng.choice(_EN_PLACES)}."
        else:
            text = (
                f"{rng.choice(_ZH_PEOPLE)}在{rng.choice(_ZH_PLACES)}吃{rng.choice(_ZH_FOODS)}。"
                if zh
                else f"today {rng.choice(['it rains', 'it snows', 'the sun shines'])} and we eat {rng.choice(['rice', 'bread', 'soup'])}."
            )
        return {"text": text, "label": kind}

    people_en = ["alice", "bob", "carol", "david", "emma"]

    def ner_example() -> list[tuple[str, str]]:
        if rng.random() < 0.5:
            person, (city, _) = rng.choice(people_en), rng.choice(_EN_FACTS)
            words = (
                [person, "lives", "in", city, "."]
                if rng.random() < 0.5
                else ["we", "met", person, "near", city, "."]
            )
            return [(w, "B-PER" if w == person else "B-LOC" if w == city else "O") for w in words]
        person, (city, country) = rng.choice(_ZH_PEOPLE[:2] + _ZH_NAMES), rng.choice(_ZH_FACTS)
        pieces = [
            (person, "PER"),
            ("在", None),
            (city, "LOC"),
            ("工作", None),
            ("，", None),
            ("喜欢", None),
            (country, "LOC"),
            ("。", None),
        ]
        out = []
        for text, kind in pieces:
            out.extend(
                (c, "O" if kind is None else ("B-" if i == 0 else "I-") + kind) for i, c in enumerate(text)
            )
        return out

    paths = {}
    for split, size in (("train", n), ("dev", n // 4), ("test", n // 4)):
        paths[f"topic_{split}"] = directory / f"topic_{split}.jsonl"
        with open(paths[f"topic_{split}"], "w", encoding="utf-8") as fh:
            for _ in range(size):
                fh.write(json.dumps(topic_example(), ensure_ascii=False) + "\n")
        paths[f"ner_{split}"] = directory / f"ner_{split}.txt"
        with open(paths[f"ner_{split}"], "w", encoding="utf-8") as fh:
            for _ in range(size):
                fh.write("".join(f"{tok}\t{tag}\n" for tok, tag in ner_example()) + "\n")
    return paths

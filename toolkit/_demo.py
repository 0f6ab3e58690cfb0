"""A small bilingual sample corpus the project writes itself, for ``make demo`` and the tests.

Sentences come from templates with a fixed seed, so the corpus is the same on every machine. It holds a
few repeated facts ("paris is the capital of france", "北京是中国的首都") that a tiny model learns within a
couple of minutes, which makes fill-mask predictions worth looking at.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

_EN_FACTS = [
    ("paris", "france"), ("berlin", "germany"), ("rome", "italy"), ("madrid", "spain"),
    ("tokyo", "japan"), ("beijing", "china"), ("london", "england"), ("moscow", "russia"),
]
_EN_ANIMALS = ["cat", "dog", "bird", "horse", "rabbit", "mouse", "cow", "sheep"]
_EN_SOUNDS = {"cat": "meows", "dog": "barks", "bird": "sings", "horse": "neighs", "cow": "moos", "sheep": "bleats"}
_EN_PLACES = ["garden", "kitchen", "park", "house", "forest", "river", "market", "school"]
_EN_VERBS = ["sees", "likes", "follows", "chases", "watches", "finds"]
_EN_ADJ = ["small", "big", "old", "young", "quiet", "happy", "brown", "white"]
_ZH_FACTS = [("北京", "中国"), ("东京", "日本"), ("巴黎", "法国"), ("伦敦", "英国"), ("柏林", "德国"), ("罗马", "意大利")]
_ZH_PEOPLE = ["小明", "小红", "老师", "医生", "学生", "妈妈", "爸爸", "朋友"]
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
                parts.append(rng.choice([f"{city} is the capital of {country}.", f"the capital of {country} is {city}."]))
            elif kind < 0.5:
                animal = rng.choice(list(_EN_SOUNDS))
                parts.append(f"the {animal} {_EN_SOUNDS[animal]} in the {rng.choice(_EN_PLACES)}.")
            else:
                a, b = rng.sample(_EN_ANIMALS, 2)
                parts.append(f"the {rng.choice(_EN_ADJ)} {a} {rng.choice(_EN_VERBS)} the {b} near the {rng.choice(_EN_PLACES)}.")
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
            else:
                parts.append(f"今天{rng.choice(_ZH_WEATHER)}，{rng.choice(_ZH_PEOPLE)}去{rng.choice(_ZH_PLACES)}。")
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

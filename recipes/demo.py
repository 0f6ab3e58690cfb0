#!/usr/bin/env python
"""The main job of ``make demo``: a tiny bilingual BERT, pretrained and fine-tuned on data the project writes.

    python -m recipes.demo --output_dir demo_output        # what `make demo` runs

1. write a small English + Chinese sample corpus and labelled sets (topic classification, PER/LOC NER),
2. train a WordPiece vocabulary and a tiny masked-LM on the corpus (recipes/pretrain.py, demo config),
   report validation loss/perplexity and show fill-mask predictions from the saved model,
3. fine-tune it for topic classification (recipes/train_classifier.py) and NER (recipes/train_ner.py),
4. use the saved models: a stock text-classification pipeline and the NER tagger on raw text.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from transformers import pipeline

try:
    from recipes import pretrain, train_classifier, train_ner
except ModuleNotFoundError:  # run as `python recipes/demo.py`: the recipes package is not importable that way
    raise SystemExit(
        "run the demo from the repository root as: python -m recipes.demo (or: make demo)"
    ) from None
from toolkit import NERTagger
from toolkit.demo import write_demo_corpus, write_demo_labelled

CONFIGS = Path(__file__).resolve().parent / "configs"
FILL_MASK = [
    "paris is the capital of [MASK].",
    "the capital of japan is [MASK].",
    "the dog [MASK] in the garden.",
    "北京是[MASK]国的首都。",
    "小明在学校吃[MASK]果。",
]
EXAMPLES = ["东京是日本的首都。", "the brown dog barks in the park.", "小红在饭馆吃饺子。"]
NER_EXAMPLES = ["张三在北京工作，喜欢中国。", "alice lives in tokyo ."]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--output_dir", default="demo_output", help="where the data and the models go")
    parser.add_argument(
        "--max_steps", type=int, default=None, help="override the pretraining steps (quick runs)"
    )
    opts = parser.parse_args(argv)
    start = time.time()
    out = Path(opts.output_dir)

    # 1. Data written by the project (no download).
    corpus = write_demo_corpus(out / "data")
    labelled = write_demo_labelled(out / "data")
    print(f"[1/4] sample data in {out / 'data'}")

    # 2. Vocabulary + tiny masked-LM.
    pretrained = out / "pretrained"
    pretrain_options = dict(
        config=CONFIGS / "pretrain" / "demo.yaml",
        train_files=[corpus["train"]],
        validation_files=[corpus["validation"]],
        output_dir=pretrained,
        fill_mask_examples=FILL_MASK,
        max_steps=opts.max_steps,
    )
    print(f"[2/4] pretraining: recipes/pretrain.py with {CONFIGS / 'pretrain' / 'demo.yaml'}")
    mlm = pretrain.main(**pretrain_options)

    # 3. Fine-tune the pretrained model: topic classification and NER.
    clf = train_classifier.main(
        config=CONFIGS / "classify" / "demo.yaml",
        model_name_or_path=pretrained,
        train_file=labelled["topic_train"],
        validation_file=labelled["topic_dev"],
        test_file=labelled["topic_test"],
        output_dir=out / "classifier",
    )
    ner = train_ner.main(
        config=CONFIGS / "ner" / "demo.yaml",
        model_name_or_path=pretrained,
        train_file=labelled["ner_train"],
        validation_file=labelled["ner_dev"],
        test_file=labelled["ner_test"],
        output_dir=out / "ner",
    )
    print(
        f"[3/4] fine-tuned: classifier test accuracy {clf['test']['accuracy']:.3f}, "
        f"NER test entity F1 {ner['test']['overall_f1']:.3f}"
    )

    # 4. Use the saved models as any Hugging Face user would (stock pipeline) and with the NER tagger.
    classify = pipeline("text-classification", model=str(out / "classifier"), device=-1)
    for text in EXAMPLES:
        pred = classify(text)[0]
        print(f"    {text} -> {pred['label']} ({pred['score']:.2f})")
    tagger = NERTagger(out / "ner")
    for text in NER_EXAMPLES:
        print(f"    {text} -> {[(e['text'], e['label'], e['start'], e['end']) for e in tagger(text)]}")
    summary = {
        "pretrain_eval_loss": mlm.get("eval_loss"),
        "pretrain_eval_perplexity": mlm.get("eval_perplexity"),
        "classifier_test_accuracy": clf["test"]["accuracy"],
        "classifier_test_macro_f1": clf["test"]["macro_f1"],
        "ner_test_entity_f1": ner["test"]["overall_f1"],
    }
    print(f"[4/4] done in {time.time() - start:.0f} s; models in {out}/{{pretrained,classifier,ner}}")
    print(json.dumps(summary, indent=2))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()

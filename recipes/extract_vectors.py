#!/usr/bin/env python
r"""Extract character, word or sentence vectors from a BERT-like checkpoint (the classic char-vector tool).

    # every distinct character of the .txt files under corpus/, static input-embedding vectors
    python recipes/extract_vectors.py --checkpoint outputs/pretrain/tiny_zh --input corpus/ --output chars.vec

    # words (jieba), contextual vectors averaged over occurrences, last two layers, word2vec binary
    python recipes/extract_vectors.py --checkpoint model_dir --input a.txt b.txt --unit word --segmenter jieba \
        --mode contextual --layers -1 -2 --output words.bin --format word2vec-binary

    # a single weights file with its vocabulary; text from stdin
    cat text.txt | python recipes/extract_vectors.py --checkpoint pytorch_model.bin --vocab vocab.txt --input - --output v.npy

    # sentence vectors, one per input line; options from a YAML file, flags winning
    python recipes/extract_vectors.py --config my_vectors.yaml --input sents.txt --unit sentence --output s.npy

A coverage report (items missing from the vocabulary, [UNK] rate, items matched only after NFKC/case
folding; for sentences, the lines truncated to the model's window) is printed and saved in the output and
beside it as <output>.coverage.json. From Python: ``main(checkpoint=..., input=[...], output=...)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from toolkit.config import ExtractArguments, answer_help, parse_config

OPTIONS = [ExtractArguments]
if __name__ == "__main__":  # --help before the heavy imports below: about 2 s instead of 5
    answer_help(OPTIONS, __doc__)

from toolkit import (
    ToolkitInputError,
    VectorSet,
    extract_sentence_vectors,
    extract_vectors,
    load_encoder,
    read_word_list,
    resolve_files,
)
from toolkit.hub import preflight, push_output_dir, write_vector_card
from toolkit.rundir import check_output_files
from toolkit.training import run_cli, set_threads, setup_cli_logging

logger = logging.getLogger("extract_vectors")


def main(argv: list[str] | None = None, **options) -> VectorSet:
    # 1. Configuration; the outputs are checked before any work: writable, not an input, no silent overwrite.
    (x,) = parse_config(OPTIONS, argv, description=__doc__, **options)
    setup_cli_logging()
    set_threads(x.threads)
    if not x.checkpoint or not x.output:
        raise ToolkitInputError("--checkpoint and --output are required")
    if not x.input and not x.words_file:
        raise ToolkitInputError("give --input (files, directories or -) or --words_file")
    output = Path(x.output)
    files = [f for f in x.input or [] if f != "-"]
    sources = [Path(p) for p in (x.words_file, x.vocab, x.checkpoint) if p and Path(p).exists()]
    inputs = [  # the corpus, and every file of the checkpoint and vocabulary: none may be written over
        *(resolve_files(files, extensions=x.extensions) if files else []),
        *(f for p in sources for f in ([p] if p.is_file() else p.rglob("*"))),
    ]
    outputs = [*VectorSet.files_written(output, format=x.format), Path(f"{output}.coverage.json")]
    if x.push_to_hub:
        outputs.append(output.parent / "README.md")  # the vector set's card
    check_output_files(outputs, inputs=inputs, overwrite=x.overwrite)
    words = read_word_list(x.words_file, encoding=x.encoding) if x.words_file else None
    hub = (
        preflight(x.hub_model_id or "", private=x.hub_private_repo, revision=x.hub_revision)
        if x.push_to_hub
        else None
    )

    # 2. Load the encoder.
    encoder = load_encoder(x.checkpoint, vocab=x.vocab)

    # 3. Extract.
    if x.unit == "sentence":
        result = extract_sentence_vectors(
            encoder,
            x.input,
            pooling=x.pooling,
            layers=x.layers,
            normalize=x.normalize,
            extensions=x.extensions,
            text_field=x.text_field,
            encoding=x.encoding,
            encoding_errors=x.encoding_errors,
            batch_size=x.batch_size,
        )
    else:
        result = extract_vectors(
            encoder,
            inputs=x.input,
            words=words,
            unit=x.unit,
            mode=x.mode,
            layers=x.layers,
            pooling=x.pooling or "mean",
            min_count=x.min_count,
            segmenter=x.segmenter,
            missing=x.missing,
            extensions=x.extensions,
            text_field=x.text_field,
            encoding=x.encoding,
            encoding_errors=x.encoding_errors,
            batch_size=x.batch_size,
        )

    # 4. Save, with the coverage report beside the vectors.
    result.save(output, format=x.format, whitespace=x.whitespace, coverage_file=True)
    cov = result.coverage
    print(f"{len(result)} vectors of dim {result.dim} -> {output}")
    if "n_found" in cov:
        print(
            f"coverage: {cov['n_found']}/{cov['n_items']} items found, {cov['n_normalized']} only after normalisation, "
            f"{cov['n_missing']} missing ([UNK] rate {cov['unk_rate']:.4%}, policy {cov['policy']})"
            + (
                f"; {cov['n_case_folded']} case variants folded (uncased model)"
                if cov.get("n_case_folded")
                else ""
            )
        )
    if cov.get("n_truncated"):
        print(
            f"{cov['n_truncated']} of {cov['n_items']} inputs were longer than {cov['max_length']} tokens: truncated"
        )

    # 5. Push the set with a card built from its provenance and coverage.
    if hub:
        write_vector_card(
            output.parent,
            output,
            provenance=result.provenance,
            coverage=cov,
            n_vectors=len(result),
            dim=result.dim,
        )
        push_output_dir(output.parent, hub)
    return result


if __name__ == "__main__":
    run_cli(main)

#!/usr/bin/env python
"""Extract character, word or sentence vectors from a BERT-like checkpoint (the classic char-vector tool).

    # every distinct character of the .txt files under corpus/, static input-embedding vectors
    python recipes/extract_vectors.py --checkpoint outputs/pretrain/tiny_zh --input corpus/ --output chars.vec

    # words (jieba), contextual vectors averaged over occurrences, last two layers, word2vec binary
    python recipes/extract_vectors.py --checkpoint model_dir --input a.txt b.txt --unit word --segmenter jieba \
        --mode contextual --layers -1 -2 --output words.bin --format word2vec-binary

    # a single weights file with its vocabulary; text from stdin
    cat text.txt | python recipes/extract_vectors.py --checkpoint pytorch_model.bin --vocab vocab.txt --input - --output v.npy

    # sentence vectors, one per input line
    python recipes/extract_vectors.py --checkpoint st_model/ --input sents.txt --unit sentence --output s.npy

A coverage report (items missing from the vocabulary, [UNK] rate, items matched only after NFKC/case
folding) is printed and saved in the output (and beside it as <output>.coverage.json).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from toolkit import (
    FORMATS,
    ToolkitInputError,
    VectorSet,
    check_output_files,
    encode_sentences,
    extract_vectors,
    install_log_redaction,
    json_text,
    load_encoder,
    preflight,
    push_output_dir,
    read_texts,
    resolve_files,
    run_cli,
    write_vector_card,
)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    p.add_argument(
        "--checkpoint", required=True, help="model dir, sentence-transformers dir, weights file or hub id"
    )
    p.add_argument(
        "--vocab", help="vocab.txt or tokenizer dir, for a weights file without a tokenizer beside it"
    )
    p.add_argument("--input", nargs="+", help="files, directories (recursive) or - for stdin")
    p.add_argument(
        "--words_file", help="extract exactly these items (one per line) instead of collecting them"
    )
    p.add_argument("--extensions", nargs="+", default=[".txt"], help="extensions read from directories")
    p.add_argument("--output", required=True, help="output file (its directory must exist)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="default: from the output extension (.vec/.txt, .bin, .npy, .safetensors)",
    )
    p.add_argument("--unit", choices=["char", "word", "sentence"], default="char")
    p.add_argument("--mode", choices=["static", "contextual"], default="static")
    p.add_argument(
        "--layers", nargs="+", type=int, default=[-1], help="hidden layers averaged (contextual, sentence)"
    )
    p.add_argument(
        "--pooling", default=None, help="sub-token pooling first/last/mean; for sentences mean/cls/max"
    )
    p.add_argument("--normalize", action="store_true", help="L2-normalise sentence vectors")
    p.add_argument("--min_count", type=int, default=1, help="ignore items rarer than this")
    p.add_argument("--segmenter", choices=["jieba"], help="Chinese word segmentation for --unit word")
    p.add_argument(
        "--missing",
        choices=["skip", "unk", "zeros"],
        default="skip",
        help="policy for items not in the vocabulary",
    )
    p.add_argument(
        "--whitespace", choices=["escape", "refuse"], default="escape", help="tokens containing whitespace"
    )
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument(
        "--push_to_hub", action="store_true", help="push the vector set (with a card) after saving"
    )
    p.add_argument("--hub_model_id", help="repository to push to: 'name' or 'namespace/name'")
    p.add_argument("--hub_private_repo", action="store_true", help="create the repository as private")
    p.add_argument("--hub_revision", help="branch to push to")
    return p


def main(argv: list[str] | None = None) -> VectorSet:
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    # 1. Check the output location before any work: writable, not an input, no silent overwrite.
    output = Path(args.output)
    if not args.input and not args.words_file:
        raise ToolkitInputError("give --input (files, directories or -) or --words_file")
    files = [f for f in args.input or [] if f != "-"]
    inputs = [
        *(resolve_files(files, extensions=args.extensions) if files else []),
        *(p for p in (args.words_file, args.vocab, args.checkpoint) if p and Path(p).is_file()),
    ]
    outputs = [*VectorSet.files_written(output, format=args.format), Path(f"{output}.coverage.json")]
    if args.push_to_hub:
        outputs.append(output.parent / "README.md")  # the vector set's card
    check_output_files(outputs, inputs=inputs, overwrite=args.overwrite)
    hub = (
        preflight(args.hub_model_id or "", private=args.hub_private_repo, revision=args.hub_revision)
        if args.push_to_hub
        else None
    )
    # 2. Load the encoder.
    encoder = load_encoder(args.checkpoint, vocab=args.vocab)
    # 3. Extract.
    if args.unit == "sentence":
        lines, digest = read_texts(args.input, extensions=args.extensions)
        vectors = encode_sentences(
            encoder,
            lines,
            pooling=args.pooling,
            layers=args.layers,
            normalize=args.normalize,
            batch_size=args.batch_size,
            show_progress=True,
        )
        result = VectorSet(
            [f"sentence_{i}" for i in range(len(lines))],
            vectors,
            {
                "checkpoint": encoder.source,
                "mode": "sentence",
                "layers": args.layers,
                "pooling": args.pooling or encoder.default_pooling,
                "normalize": args.normalize,
                "corpus_sha256": digest,
            },
            {"n_items": len(lines)},
        )
    else:
        words = None
        if args.words_file:
            words = [w for w in Path(args.words_file).read_text(encoding="utf-8").split("\n") if w.strip()]
        result = extract_vectors(
            encoder,
            inputs=args.input,
            words=words,
            unit=args.unit,
            mode=args.mode,
            layers=args.layers,
            pooling=args.pooling or "mean",
            min_count=args.min_count,
            segmenter=args.segmenter,
            missing=args.missing,
            extensions=args.extensions,
            batch_size=args.batch_size,
        )
    # 4. Save, with the coverage report beside the vectors.
    result.save(output, format=args.format, whitespace=args.whitespace)
    Path(f"{output}.coverage.json").write_text(json_text(result.coverage), encoding="utf-8")
    cov = result.coverage
    print(f"{len(result)} vectors of dim {result.dim} -> {output}")
    if "n_found" in cov:
        print(
            f"coverage: {cov['n_found']}/{cov['n_items']} items found, {cov['n_normalized']} only after normalisation, "
            f"{cov['n_missing']} missing ([UNK] rate {cov['unk_rate']:.4%}, policy {cov['policy']})"
        )
    # 5. Push the set with a card built from its provenance and coverage.
    if hub:
        write_vector_card(
            output.parent,
            output,
            provenance=result.provenance,
            coverage=result.coverage,
            n_vectors=len(result),
            dim=result.dim,
        )
        push_output_dir(output.parent, hub)
    return result


if __name__ == "__main__":
    run_cli(main)

"""Pretraining speed on CPU (issue 37): freed memory kept for reuse, the sparse head's few shapes; the benchmarks
import."""

from __future__ import annotations

import importlib
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.training import reuse_freed_memory

GLIBC = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"

# Allocate and free a 64 MiB tensor ten times; print whether the setting applied and the page faults taken.
_FAULTS = """
import resource, sys, torch
from toolkit.training import reuse_freed_memory
applied = reuse_freed_memory(sys.argv[1] == "on")
for _ in range(3):  # warm-up: the heap grows to hold the block
    torch.ones(16 * 2**20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.ones(16 * 2**20)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not GLIBC, reason="the setting applies to glibc's malloc only")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    applied_off, faults_off = _faults("off")
    applied_on, faults_on = _faults("on")
    if not applied_on:
        pytest.skip("this glibc refuses a 1 GiB mmap threshold (older than 2.26?)")
    assert applied_off is False
    # Without reuse every 64 MiB block comes back from the system page by page (fewer faults with huge pages).
    if faults_off < 1000:
        pytest.skip("huge pages: too few faults to compare")
    assert faults_on * 4 < faults_off


def test_reuse_can_be_turned_off_and_is_a_run_option():
    from toolkit.config import RunArguments

    assert reuse_freed_memory(False) is False
    assert RunArguments().reuse_freed_memory is None  # each recipe decides: pretraining on, fine-tuning off


@pytest.mark.parametrize(
    "module",
    sorted(p.stem for p in (Path(__file__).parents[1] / "benchmarks").glob("*.py") if p.stem != "__init__"),
)
def test_every_benchmark_imports(module):
    """A benchmark that no longer imports (a helper renamed under it) fails here, not on its next run."""
    importlib.import_module(f"benchmarks.{module}")


@pytest.mark.parametrize("n_masked", [1, 63, 64, 65, 130])
def test_sparse_head_rows_come_in_a_few_shapes_and_the_loss_ignores_the_extra_rows(tiny_config, n_masked):
    """The head runs on the labelled rows rounded up to a multiple of 64 (a new matmul shape almost every
    step made oneDNN cache buffers for each, and memory grew with the steps); the extra rows change nothing."""
    import torch
    import torch.nn.functional as F

    from toolkit._model import HEAD_ROWS_MULTIPLE, SparseHeadBertForMaskedLM
    from toolkit.pretrain import IGNORE_INDEX

    torch.manual_seed(0)
    model = SparseHeadBertForMaskedLM(tiny_config).eval()
    ids = torch.randint(5, tiny_config.vocab_size, (4, 40))
    labels = torch.full_like(ids, IGNORE_INDEX)
    where = torch.randperm(ids.numel())[:n_masked]
    labels.view(-1)[where] = ids.view(-1)[where]
    rows = []
    model.cls.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
    out = model(input_ids=ids, labels=labels)
    assert rows == [-(-n_masked // HEAD_ROWS_MULTIPLE) * HEAD_ROWS_MULTIPLE]
    assert out.logits.shape == (n_masked, tiny_config.vocab_size)
    # the loss over the labelled rows only, as the unpadded head computes it
    with torch.no_grad():
        hidden = model.bert(ids).last_hidden_state.reshape(-1, tiny_config.hidden_size)
        flat = labels.reshape(-1)
        keep = flat != IGNORE_INDEX
        expected = F.cross_entropy(model.cls(hidden[keep]), flat[keep])
    torch.testing.assert_close(out.logits, model.cls(hidden[keep]).detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-6)
    # under gradient accumulation the sum is divided by the accumulated count, not by the padded rows
    summed = model(input_ids=ids, labels=labels, num_items_in_batch=3 * n_masked).loss
    torch.testing.assert_close(summed, expected / 3, rtol=1e-5, atol=1e-6)

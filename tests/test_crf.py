"""The CRF output layer: likelihood and decoding against brute force, BIO constraints, training, word gathering."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from toolkit import _crf
from toolkit._crf import CRF, IMPOSSIBLE, gather_words, viterbi

BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def bio_constraints(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """I-X only after B-X or I-X, and never first; everything else free (written here, not imported)."""
    k = len(labels)
    allowed = np.ones((k, k), dtype=bool)
    may_start = np.ones(k, dtype=bool)
    for j, lab in enumerate(labels):
        if lab.startswith("I-"):
            may_start[j] = False
            for i, prev in enumerate(labels):
                allowed[i, j] = prev in (f"B-{lab[2:]}", lab)
    return allowed, may_start


def is_valid(path: list[int], allowed: np.ndarray, may_start: np.ndarray) -> bool:
    if not path:
        return True
    return bool(may_start[path[0]]) and all(allowed[a, b] for a, b in itertools.pairwise(path))


def random_crf(k: int, generator: torch.Generator, allowed=None, may_start=None) -> CRF:
    crf = CRF(k, allowed=allowed, may_start=may_start)
    with torch.no_grad():
        crf.transitions.copy_(torch.randn(k, k, generator=generator))
        crf.start.copy_(torch.randn(k, generator=generator))
        crf.end.copy_(torch.randn(k, generator=generator))
    return crf


def path_score(emissions, path, trans, start, end) -> float:
    """Score of one path (python floats, trans may hold -inf or IMPOSSIBLE-penalised entries)."""
    score = start[path[0]] + end[path[-1]]
    for t, tag in enumerate(path):
        score += emissions[t][tag]
        if t:
            score += trans[path[t - 1]][tag]
    return float(score)


def brute_log_likelihood(crf: CRF, emissions, tags, n: int, *, skip_forbidden: bool) -> float:
    """log p(tags) over all K^n paths; forbidden transitions either penalised by IMPOSSIBLE or skipped."""
    if n == 0:
        return 0.0
    allowed = crf.allowed.numpy()
    trans = crf.transitions.detach().double().numpy()
    penalised = trans + np.where(allowed, 0.0, IMPOSSIBLE)
    start, end = crf.start.detach().double().numpy(), crf.end.detach().double().numpy()
    em = emissions.double().numpy()
    scores = []
    for path in itertools.product(range(crf.num_tags), repeat=n):
        if skip_forbidden and not all(allowed[a, b] for a, b in itertools.pairwise(path)):
            continue
        scores.append(path_score(em, path, penalised, start, end))
    log_z = np.logaddexp.reduce(np.array(scores))
    return path_score(em, list(tags[:n]), penalised, start, end) - float(log_z)


def brute_best(emissions: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> list[int]:
    n, k = emissions.shape
    best, best_path = -math.inf, None
    for path in itertools.product(range(k), repeat=n):
        score = path_score(emissions, path, trans, start, end)
        if score > best:
            best, best_path = score, list(path)
    assert best_path is not None, "no valid path in this test case"
    return best_path


# ------------------------------------------------------------------------------------------ likelihood
@pytest.mark.parametrize("k", [3, 4])
@pytest.mark.parametrize("forbid", [False, True])
def test_log_likelihood_matches_brute_force(k, forbid):
    gen = torch.Generator().manual_seed(1000 + 10 * k + forbid)
    allowed = None
    if forbid:
        allowed = torch.rand(k, k, generator=gen) > 0.35
        allowed |= torch.eye(k, dtype=torch.bool)  # every tag can repeat: a valid path always exists
        allowed[0, 1] = False  # at least one forbidden transition
        allowed = allowed.numpy()
    crf = random_crf(k, gen, allowed=allowed, may_start=np.array([False] + [True] * (k - 1)))
    lengths = [4, 2, 1, 0, 3]
    batch, width = len(lengths), max(lengths)
    emissions = torch.randn(batch, width, k, generator=gen)
    mask = torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    tags = torch.randint(0, k, (batch, width), generator=gen)
    tags[~mask] = -100  # padding may hold anything
    if forbid:  # one row's gold path takes a forbidden transition
        tags[0, :2] = torch.tensor([0, 1])
    ll = crf.log_likelihood(emissions, tags, mask)
    assert ll.shape == (batch,)
    for b, n in enumerate(lengths):
        expected = brute_log_likelihood(crf, emissions[b], tags[b].tolist(), n, skip_forbidden=False)
        assert ll[b].item() == pytest.approx(expected, rel=1e-4, abs=1e-4)
    assert ll[3].item() == 0.0
    if forbid:
        assert ll[0].item() < IMPOSSIBLE / 2
        # Gold paths that stay valid: the forbidden paths' finite penalty is negligible.
        for b, n in enumerate(lengths):
            gold = tags[b].tolist()[:n]
            if n and all(crf.allowed[a, c] for a, c in itertools.pairwise(gold)):
                skipped = brute_log_likelihood(crf, emissions[b], gold, n, skip_forbidden=True)
                assert ll[b].item() == pytest.approx(skipped, rel=1e-3, abs=1e-3)


def test_may_start_not_enforced_in_likelihood():
    allowed, may_start = bio_constraints(BIO)
    crf = CRF(len(BIO), allowed=allowed, may_start=may_start)
    emissions = torch.zeros(2, 3, len(BIO))
    mask = torch.ones(2, 3, dtype=torch.bool)
    i_per, b_per, o = BIO.index("I-PER"), BIO.index("B-PER"), BIO.index("O")
    tags = torch.tensor([[i_per, i_per, o], [o, i_per, i_per]])
    ll = crf.log_likelihood(emissions, tags, mask)
    assert ll[0].item() > IMPOSSIBLE / 2  # a window may begin inside an entity
    assert ll[1].item() < IMPOSSIBLE / 2  # but O -> I-PER is forbidden
    assert (
        crf.log_likelihood(emissions, torch.tensor([[b_per, i_per, o]] * 2), mask)[0].item() > IMPOSSIBLE / 2
    )


def test_nll_reductions_and_gradients():
    gen = torch.Generator().manual_seed(7)
    allowed, may_start = bio_constraints(BIO)
    crf = random_crf(len(BIO), gen, allowed=allowed, may_start=may_start)
    lengths = [5, 0, 3, 1]
    emissions = torch.randn(4, 5, len(BIO), generator=gen, requires_grad=True)
    mask = torch.arange(5).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    tags = torch.randint(0, len(BIO), (4, 5), generator=gen)
    tags[~mask] = -100
    tags[0, :2] = torch.tensor([0, BIO.index("I-LOC")])  # forbidden O -> I-LOC in the gold path
    none = crf.nll(emissions, tags, mask, reduction="none")
    assert none.shape == (4,) and none[1].item() == 0.0
    total = crf.nll(emissions, tags, mask, reduction="sum")
    mean = crf.nll(emissions, tags, mask)
    assert total.item() == pytest.approx(none.sum().item(), rel=1e-6)
    assert mean.item() == pytest.approx(total.item() / 3, rel=1e-6)  # three non-empty rows
    assert torch.isfinite(mean)
    mean.backward()
    for name, param in [*crf.named_parameters(), ("emissions", emissions)]:
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    assert emissions.grad[1].abs().sum().item() == 0.0  # the empty row takes no loss
    assert emissions.grad[0].abs().sum().item() > 0.0
    with pytest.raises(ValueError):
        crf.nll(emissions, tags, mask, reduction="max")
    empty = crf.nll(emissions[:, :0], tags[:, :0], mask[:, :0])
    assert empty.item() == 0.0


# ------------------------------------------------------------------------------------------ decoding
def test_decode_matches_brute_force_and_numpy_viterbi():
    gen = torch.Generator().manual_seed(3)
    for case in range(12):
        k = 3 + case % 2
        allowed = (torch.rand(k, k, generator=gen) > 0.4) | torch.eye(k, dtype=torch.bool)
        may_start = torch.rand(k, generator=gen) > 0.5
        may_start[case % k] = True
        crf = random_crf(k, gen, allowed=allowed.numpy(), may_start=may_start.numpy())
        lengths = [4, 1, 3, 0, 2]
        width = max(lengths)
        emissions = 2 * torch.randn(len(lengths), width, k, generator=gen)
        mask = torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
        decoded = crf.decode(emissions, mask)
        trans, start, end = crf.numpy_scores()
        assert np.isneginf(trans[~allowed.numpy()]).all() and np.isneginf(start[~may_start.numpy()]).all()
        for b, n in enumerate(lengths):
            assert len(decoded[b]) == n
            if n == 0:
                assert viterbi(emissions[b, :0].numpy(), trans, start, end) == []
                continue
            em = emissions[b, :n].double().numpy()
            assert decoded[b] == brute_best(em, trans, start, end), (case, b)
            assert viterbi(emissions[b, :n].numpy(), trans, start, end) == decoded[b]
            assert is_valid(decoded[b], allowed.numpy(), may_start.numpy())


def test_numpy_viterbi_with_inf_entries_matches_brute_force():
    rng = np.random.default_rng(11)
    for case in range(20):
        k, n = 3 + case % 2, 1 + case % 4
        trans = rng.normal(size=(k, k))
        trans[rng.random((k, k)) < 0.4] = -np.inf
        np.fill_diagonal(trans, rng.normal(size=k))  # a valid path always exists
        start, end = rng.normal(size=k), rng.normal(size=k)
        start[rng.random(k) < 0.4] = -np.inf
        end[rng.random(k) < 0.4] = -np.inf
        keep = case % k
        start[keep], end[keep] = 0.0, 0.0
        scores = rng.normal(size=(n, k)).astype(np.float32)
        path = viterbi(scores, trans, start, end)
        assert path == brute_best(scores.astype(np.float64), trans, start, end), case
        assert all(isinstance(tag, int) for tag in path)


def test_numpy_viterbi_blocks_match_decode(monkeypatch):
    monkeypatch.setattr(_crf, "_VITERBI_BLOCK_ROWS", 7)  # many blocks, boundaries everywhere
    gen = torch.Generator().manual_seed(5)
    allowed, may_start = bio_constraints(BIO)
    crf = random_crf(len(BIO), gen, allowed=allowed, may_start=may_start)
    emissions = 3 * torch.randn(1, 300, len(BIO), generator=gen)
    mask = torch.ones(1, 300, dtype=torch.bool)
    (decoded,) = crf.decode(emissions, mask)
    assert viterbi(emissions[0].numpy(), *crf.numpy_scores()) == decoded
    assert (
        viterbi(emissions[0].numpy().astype(np.float16).astype(np.float32), *crf.numpy_scores())
        == (crf.decode(emissions.half().float(), mask)[0])
    )
    assert is_valid(decoded, allowed, may_start)


def test_bio_constraints_hold_against_emissions():
    allowed, may_start = bio_constraints(BIO)
    k = len(BIO)
    crf = CRF(k, allowed=allowed, may_start=may_start)
    o, i_per, i_loc = BIO.index("O"), BIO.index("I-PER"), BIO.index("I-LOC")
    # Emissions that strongly favour invalid sequences: O I-PER I-PER, I-LOC first, I-PER -> I-LOC.
    wanted = [[o, i_per, i_per], [i_loc, i_loc, o], [i_per, i_loc, i_per]]
    emissions = torch.full((3, 3, k), -5.0)
    for b, seq in enumerate(wanted):
        for t, tag in enumerate(seq):
            emissions[b, t, tag] = 10.0
    mask = torch.ones(3, 3, dtype=torch.bool)
    for path in crf.decode(emissions, mask):
        assert is_valid(path, allowed, may_start), path
        assert BIO[path[0]] != "I-PER" and not BIO[path[0]].startswith("I-")
    for b in range(3):
        path = viterbi(emissions[b].numpy(), *crf.numpy_scores())
        assert is_valid(path, allowed, may_start), path
    # Random emissions biased towards I- tags: still never invalid.
    gen = torch.Generator().manual_seed(2)
    emissions = torch.randn(16, 9, k, generator=gen)
    emissions[..., [i_per, i_loc]] += 4.0
    lengths = torch.randint(0, 10, (16,), generator=gen)
    mask = torch.arange(9).unsqueeze(0) < lengths.unsqueeze(1)
    for b, path in enumerate(crf.decode(emissions, mask)):
        assert len(path) == lengths[b].item()
        assert is_valid(path, allowed, may_start), path


# ------------------------------------------------------------------------------------------ training
def make_task(
    gen: torch.Generator, batch: int, width: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tags 0 then runs of 1, 2, 2, ...: tag 1 only after 0, tag 2 only after 1 or 2.

    Tags 1 and 2 have identical emissions, so only the transitions tell them apart.
    """
    template = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    tags = torch.zeros(batch, width, dtype=torch.long)
    for b in range(batch):
        t = 0
        while t < width:
            run = int(torch.randint(1, 4, (1,), generator=gen))
            tags[b, t] = 0
            for j in range(1, run + 1):
                if t + j < width:
                    tags[b, t + j] = 1 if j == 1 else 2
            t += run + 1
    emissions = template[tags] + 0.1 * torch.randn(batch, width, 3, generator=gen)
    emissions[..., 2] = emissions[..., 1]  # exactly identical for tags 1 and 2
    lengths = torch.randint(2, width + 1, (batch,), generator=gen)
    mask = torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)
    return emissions, torch.where(mask, tags, -100), mask


def test_training_lowers_nll_and_transitions_disambiguate():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    emissions, tags, mask = make_task(gen, batch=32, width=10)
    crf = CRF(3)
    optimizer = torch.optim.Adam(crf.parameters(), lr=0.1)
    first = crf.nll(emissions, tags, mask).item()
    for _ in range(100):
        optimizer.zero_grad()
        loss = crf.nll(emissions, tags, mask)
        loss.backward()
        optimizer.step()
    last = crf.nll(emissions, tags, mask).item()
    assert math.isfinite(last) and last < 0.5 * first
    test_emissions, test_tags, test_mask = make_task(gen, batch=16, width=12)
    decoded = crf.decode(test_emissions, test_mask)
    for b, path in enumerate(decoded):
        n = int(test_mask[b].sum())
        assert path == test_tags[b, :n].tolist()
    assert crf.transitions[0, 1] > crf.transitions[0, 2]
    assert crf.transitions[1, 2] > crf.transitions[1, 1]
    # Emissions alone cannot separate tags 1 and 2.
    assert not all(
        test_emissions[b, :n].argmax(-1).tolist() == test_tags[b, :n].tolist()
        for b, n in enumerate(test_mask.sum(1).tolist())
    )


# ------------------------------------------------------------------------------------------ words
def test_gather_words_compacts_labelled_positions():
    labels = torch.tensor(
        [
            [-100, 3, -100, -100, 1, 2, -100],
            [-100] * 7,
            [0, -100, 4, 4, -100, -100, 1],
            [-100, -100, -100, -100, -100, -100, 2],
        ]
    )
    emissions = torch.randn(4, 7, 5, generator=torch.Generator().manual_seed(1))
    word_emissions, word_tags, mask = gather_words(emissions, labels)
    assert word_emissions.shape == (4, 4, 5) and word_tags.shape == (4, 4) and mask.shape == (4, 4)
    assert mask.dtype == torch.bool and word_tags.dtype == torch.long
    for b in range(4):
        positions = [i for i in range(7) if labels[b, i] != -100]
        n = len(positions)
        assert mask[b].tolist() == [True] * n + [False] * (4 - n)
        assert word_tags[b, :n].tolist() == [labels[b, i].item() for i in positions]
        assert (word_tags[b, n:] == 0).all()
        for j, i in enumerate(positions):
            assert torch.equal(word_emissions[b, j], emissions[b, i])
    # Gradients flow back to the labelled tokens only.
    emissions.requires_grad_(True)
    word_emissions, word_tags, mask = gather_words(emissions, labels)
    CRF(5).nll(word_emissions, word_tags, mask).backward()
    unlabelled = labels == -100
    assert (emissions.grad[unlabelled] == 0).all()
    assert (emissions.grad[~unlabelled].abs().sum(-1) > 0).all()


def test_gather_words_keeps_order_on_long_rows():
    gen = torch.Generator().manual_seed(4)
    labels = torch.randint(0, 9, (6, 200), generator=gen)
    labels[torch.rand(6, 200, generator=gen) < 0.5] = -100
    labels[5] = -100
    emissions = torch.randn(6, 200, 9, generator=gen)
    word_emissions, word_tags, mask = gather_words(emissions, labels)
    counts = (labels != -100).sum(1)
    assert word_tags.shape[1] == int(counts.max())
    for b in range(6):
        kept = labels[b] != -100
        n = int(counts[b])
        assert torch.equal(word_tags[b, :n], labels[b][kept])
        assert torch.equal(word_emissions[b, :n], emissions[b][kept])
        assert mask[b].sum().item() == n and mask[b, :n].all()


def test_gather_words_without_labels_and_other_ignore_index():
    labels = torch.full((2, 4), -100)
    word_emissions, word_tags, mask = gather_words(torch.zeros(2, 4, 3), labels)
    assert word_emissions.shape == (2, 1, 3) and not mask.any() and (word_tags == 0).all()
    assert CRF(3).nll(word_emissions, word_tags, mask).item() == 0.0
    assert CRF(3).decode(word_emissions, mask) == [[], []]
    labels = torch.tensor([[-1, 2, -1, 0]])
    _, word_tags, mask = gather_words(torch.zeros(1, 4, 3), labels, ignore_index=-1)
    assert word_tags.tolist() == [[2, 0]] and mask.tolist() == [[True, True]]


# ------------------------------------------------------------------------------------------ state
def test_state_dict_holds_the_scores_and_the_constraints_come_from_the_constructor():
    allowed, may_start = bio_constraints(BIO)
    gen = torch.Generator().manual_seed(9)
    crf = random_crf(len(BIO), gen, allowed=allowed, may_start=may_start)
    state = crf.state_dict()
    assert set(state) == {"transitions", "start", "end"}  # constraints follow from the labels
    fresh = CRF(len(BIO), allowed=allowed, may_start=may_start)
    fresh.load_state_dict(state)
    assert fresh.allowed.tolist() == allowed.tolist()
    assert fresh.may_start.tolist() == may_start.tolist()
    assert torch.equal(fresh.transitions, crf.transitions)
    emissions = torch.randn(3, 6, len(BIO), generator=gen)
    mask = torch.ones(3, 6, dtype=torch.bool)
    assert fresh.decode(emissions, mask) == crf.decode(emissions, mask)


def test_constructor_checks_shapes():
    with pytest.raises(ValueError):
        CRF(0)
    with pytest.raises(ValueError):
        CRF(3, allowed=np.ones((3, 2), dtype=bool))
    with pytest.raises(ValueError):
        CRF(3, may_start=np.ones(4, dtype=bool))
    crf = CRF(3)
    with pytest.raises(ValueError):
        crf.decode(torch.zeros(1, 2, 4), torch.ones(1, 2, dtype=torch.bool))

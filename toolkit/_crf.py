"""The CRF output layer of the NER recipe (``--crf true``): a linear-chain conditional random field over words.

The encoder scores every word for every tag (the *emissions*); the CRF adds a learned score for each pair of
consecutive tags (``transitions``) and for the first and last tag of a sentence (``start``, ``end``). It is
trained with the sequence log-likelihood, the score of the gold path minus the log of the sum over all paths
(the forward algorithm), and decodes the best-scoring path with Viterbi.

BIO validity is enforced as hard constraints, not learned: a transition that ``allowed`` forbids (``I-X``
after ``O`` or after another type) gets :data:`IMPOSSIBLE` added in training, a large but finite penalty that
keeps the gradients finite, and is never decoded (``-inf``). ``may_start`` (no sentence starts with ``I-X``)
is enforced only when decoding: a training window of a long sentence can begin inside an entity.

:func:`viterbi` decodes one sentence in numpy with the same numbers as :meth:`CRF.decode` (the same path),
in bounded memory on sentences of any length; :func:`gather_words` turns token-level emissions and labels
(one label per word, on its first sub-token) into the word sequences the CRF is trained on.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["CRF", "IMPOSSIBLE", "gather_words", "viterbi"]

IMPOSSIBLE = -1e4  # score added to a forbidden transition in training (finite: keeps gradients finite)

# Words whose scores are converted to float64 at once by :func:`viterbi`: a sentence of a million words
# holds its scores as given, one back-pointer per word and tag (one byte up to 256 tags) and this block.
_VITERBI_BLOCK_ROWS = 1 << 14


def _as_bool_buffer(
    value: np.ndarray | torch.Tensor | None, shape: tuple[int, ...], name: str
) -> torch.Tensor:
    """A bool tensor of ``shape`` from ``value`` (all True when None); raises ValueError on a wrong shape."""
    if value is None:
        return torch.ones(shape, dtype=torch.bool)
    tensor = torch.as_tensor(
        np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value, dtype=bool)
    )
    if tuple(tensor.shape) != shape:
        raise ValueError(f"CRF: {name} has shape {tuple(tensor.shape)}, expected {shape}")
    return tensor.clone()


class CRF(nn.Module):
    """Linear-chain CRF over ``num_tags`` tags with hard transition constraints.

    Attributes:
        transitions: ``(K, K)`` parameter; ``transitions[i, j]`` is the score of tag ``j`` following tag ``i``.
        start: ``(K,)`` parameter, the score of a sentence starting with each tag.
        end: ``(K,)`` parameter, the score of a sentence ending with each tag.
        allowed: ``(K, K)`` bool buffer (not saved: rebuilt from the labels), which tag may follow which.
        may_start: ``(K,)`` bool buffer (not saved), which tags may start a sentence (decoding
            only).
    """

    def __init__(self, num_tags: int, allowed: np.ndarray | None = None, may_start: np.ndarray | None = None):
        """Zero scores and the given constraints.

        Args:
            num_tags: number of tags ``K`` (at least 1).
            allowed: ``(K, K)`` bools, ``allowed[i, j]`` whether tag ``j`` may follow tag ``i``; default all.
            may_start: ``(K,)`` bools, whether each tag may start a sentence; default all.

        Raises:
            ValueError: ``num_tags`` below 1, or a constraint of the wrong shape.
        """
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"CRF: num_tags must be at least 1, got {num_tags}")
        self.num_tags = int(num_tags)
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))
        # Not in the state dict: the constraints follow from the label set, which the owner of the CRF rebuilds
        # them from (a saved model is loaded with the same labels, so nothing is reported missing or unused).
        self.register_buffer(
            "allowed", _as_bool_buffer(allowed, (num_tags, num_tags), "allowed"), persistent=False
        )
        self.register_buffer(
            "may_start", _as_bool_buffer(may_start, (num_tags,), "may_start"), persistent=False
        )

    def extra_repr(self) -> str:
        """``num_tags`` in the module's repr."""
        return f"num_tags={self.num_tags}"

    def transition_scores(self) -> torch.Tensor:
        """The transition scores used in training: ``transitions`` plus :data:`IMPOSSIBLE` where not allowed."""
        penalty = torch.zeros_like(self.transitions).masked_fill(~self.allowed, IMPOSSIBLE)
        return self.transitions + penalty

    def _check(self, emissions: torch.Tensor, mask: torch.Tensor) -> None:
        """Raise ValueError when the shapes of ``emissions`` and ``mask`` do not fit this CRF."""
        if emissions.dim() != 3 or emissions.shape[-1] != self.num_tags:
            raise ValueError(
                f"CRF: emissions must have shape (batch, length, {self.num_tags}), got {tuple(emissions.shape)}"
            )
        if tuple(mask.shape) != tuple(emissions.shape[:2]):
            raise ValueError(
                f"CRF: mask has shape {tuple(mask.shape)}, expected {tuple(emissions.shape[:2])}"
            )

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Log-likelihood of each row's gold tags: score of the gold path minus ``log Z``.

        The path score is ``start[y_0] + sum_t emissions[t, y_t] + sum_t scores[y_{t-1}, y_t] + end[y_last]``
        with the scores of :meth:`transition_scores`; ``may_start`` is not enforced (a training window may
        begin inside an entity). Computed in at least float32.

        Args:
            emissions: ``(B, T, K)`` float word scores.
            tags: ``(B, T)`` long gold tags; any value (e.g. -100) where ``mask`` is False.
            mask: ``(B, T)`` bool, True on a prefix of each row; a row of length 0 has log-likelihood 0.

        Returns:
            ``(B,)`` log-likelihoods.
        """
        self._check(emissions, mask)
        batch, length, _ = emissions.shape
        dtype = torch.promote_types(
            emissions.dtype, torch.promote_types(self.transitions.dtype, torch.float32)
        )
        emissions = emissions.to(dtype)
        if length == 0 or batch == 0:
            return emissions.new_zeros(batch) + 0.0 * self.transitions.sum().to(dtype)
        mask = mask.to(torch.bool)
        trans = self.transition_scores().to(dtype)
        start, end = self.start.to(dtype), self.end.to(dtype)
        tags = torch.where(mask, tags.long(), torch.zeros_like(tags, dtype=torch.long))
        tags = tags.clamp(0, self.num_tags - 1)
        lengths = mask.sum(1)
        nonempty = lengths > 0
        rows = torch.arange(batch, device=emissions.device)

        # Score of the gold path.
        maskf = mask.to(dtype)
        gold = start[tags[:, 0]]
        gold = gold + (emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1) * maskf).sum(1)
        if length > 1:
            gold = gold + (trans[tags[:, :-1], tags[:, 1:]] * maskf[:, 1:]).sum(1)
        last = tags[rows, (lengths - 1).clamp(min=0)]
        gold = gold + end[last]

        # log Z by the forward algorithm; a row's alpha stays as it was past its end.
        alpha = start.unsqueeze(0) + emissions[:, 0]
        for t in range(1, length):
            step = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
        log_z = torch.logsumexp(alpha + end.unsqueeze(0), dim=1)
        return torch.where(nonempty, gold - log_z, torch.zeros_like(gold))

    def nll(
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor, reduction: str = "mean"
    ) -> torch.Tensor:
        """Negative log-likelihood of the gold tags (see :meth:`log_likelihood`).

        Args:
            emissions, tags, mask: as for :meth:`log_likelihood`.
            reduction: ``"mean"`` over the rows with at least one position (0 when there is none),
                ``"sum"``, or ``"none"`` (one value per row).

        Returns:
            A scalar, or ``(B,)`` for ``"none"``.

        Raises:
            ValueError: an unknown reduction.
        """
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"CRF: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        loss = -self.log_likelihood(emissions, tags, mask)
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        n_rows = (mask.sum(1) > 0).sum().clamp(min=1) if mask.numel() else torch.tensor(1, device=loss.device)
        return loss.sum() / n_rows.to(loss.dtype)

    def numpy_scores(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The decoding scores as float64 numpy: ``(transitions, start, end)``.

        ``transitions`` is ``-inf`` where not ``allowed`` and ``start`` is ``-inf`` where a tag may not start;
        these are the numbers :meth:`decode` uses and :func:`viterbi` takes.
        """
        with torch.no_grad():
            trans = self.transitions.detach().cpu().double().numpy().copy()
            start = self.start.detach().cpu().double().numpy().copy()
            end = self.end.detach().cpu().double().numpy().copy()
            trans[~self.allowed.cpu().numpy()] = -np.inf
            start[~self.may_start.cpu().numpy()] = -np.inf
        return trans, start, end

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """Best path of each row by batched Viterbi, in float64 (the same path as :func:`viterbi`).

        Forbidden transitions are never decoded, and a tag that may not start is never first.

        Args:
            emissions: ``(B, T, K)`` float word scores.
            mask: ``(B, T)`` bool, True on a prefix of each row.

        Returns:
            One list of tag ids per row, as long as the row's masked length.
        """
        self._check(emissions, mask)
        batch, length, _ = emissions.shape
        lengths_list = mask.sum(1).tolist()
        if length == 0 or batch == 0:
            return [[] for _ in range(batch)]
        device = emissions.device if emissions.device.type not in ("mps",) else torch.device("cpu")
        emissions = emissions.detach().to(device=device, dtype=torch.float64)
        mask = mask.to(device=device, dtype=torch.bool)
        trans_np, start_np, end_np = self.numpy_scores()
        trans = torch.from_numpy(trans_np).to(device)
        start = torch.from_numpy(start_np).to(device)
        end = torch.from_numpy(end_np).to(device)
        lengths = mask.sum(1)

        back = torch.zeros(batch, length, self.num_tags, dtype=torch.long, device=device)
        alpha = start.unsqueeze(0) + emissions[:, 0]
        for t in range(1, length):
            candidates = alpha.unsqueeze(2) + trans.unsqueeze(0)  # batch x previous tag x next tag
            best_prev = candidates.argmax(1)
            step = candidates.gather(1, best_prev.unsqueeze(1)).squeeze(1) + emissions[:, t]
            back[:, t] = best_prev
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
        best_last = (alpha + end.unsqueeze(0)).argmax(1)

        paths = torch.zeros(batch, length, dtype=torch.long, device=device)
        current = torch.zeros(batch, dtype=torch.long, device=device)
        for t in range(length - 1, -1, -1):
            current = torch.where(lengths - 1 == t, best_last, current)
            paths[:, t] = current
            if t > 0:  # past a row's end this follows garbage, replaced at the row's last position
                current = back[:, t].gather(1, current.unsqueeze(1)).squeeze(1)
        rows = paths.cpu().tolist()
        return [row[:n] for row, n in zip(rows, lengths_list, strict=True)]


def viterbi(scores: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> list[int]:
    """Best tag path of one sentence (numpy Viterbi), the same path as :meth:`CRF.decode` for the same numbers.

    Memory stays small on sentences of any length: back-pointers take the smallest integer type that holds a
    tag id, and the scores are converted to float64 a block of words at a time.

    Args:
        scores: ``(n, K)`` emission scores of the words (raw, not log-softmax); any float dtype.
        transitions: ``(K, K)``, ``transitions[i, j]`` the score of tag ``j`` after tag ``i``; may hold ``-inf``.
        start: ``(K,)`` scores of the first tag; may hold ``-inf``.
        end: ``(K,)`` scores of the last tag; may hold ``-inf``.

    Returns:
        ``n`` tag ids (empty for an empty sentence).
    """
    n = len(scores)
    if n == 0:
        return []
    transitions = np.asarray(transitions, dtype=np.float64)
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    num_tags = transitions.shape[0]
    if transitions.shape != (num_tags, num_tags) or start.shape != (num_tags,) or end.shape != (num_tags,):
        raise ValueError(
            f"viterbi: transitions {transitions.shape}, start {start.shape} and end {end.shape} do not agree"
        )
    if np.shape(scores)[-1] != num_tags:
        raise ValueError(f"viterbi: scores have {np.shape(scores)[-1]} tags, transitions {num_tags}")
    back = np.zeros((n, num_tags), dtype=np.min_scalar_type(max(num_tags - 1, 0)))
    columns = np.arange(num_tags)
    alpha = None
    for begin in range(0, n, _VITERBI_BLOCK_ROWS):
        block = np.asarray(scores[begin : begin + _VITERBI_BLOCK_ROWS], dtype=np.float64)
        for t, row in enumerate(block, start=begin):
            if alpha is None:
                alpha = start + row
                continue
            candidates = alpha[:, None] + transitions  # previous tag x next tag
            best_prev = candidates.argmax(0)
            back[t] = best_prev
            alpha = candidates[best_prev, columns] + row
    path = np.empty(n, dtype=np.int64)
    path[-1] = int((alpha + end).argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path.tolist()


def gather_words(
    emissions: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Compact token-level emissions and labels into word sequences for the CRF.

    Only each word's first sub-token carries a label (the others, special tokens and padding hold
    ``ignore_index``); the labelled positions of a row, in order, are the words its window owns, which are
    contiguous in the sentence and so form the CRF's sequence.

    Args:
        emissions: ``(B, L, K)`` token scores.
        labels: ``(B, L)`` token labels, ``ignore_index`` where a token takes no label.
        ignore_index: the label of an unlabelled token.

    Returns:
        ``(word_emissions, word_tags, mask)``: ``(B, T, K)``, ``(B, T)`` long with 0 at padding, and ``(B, T)``
        bool True on a prefix of each row; ``T`` is the largest number of labelled positions in a row (at
        least 1).
    """
    if emissions.dim() != 3 or tuple(labels.shape) != tuple(emissions.shape[:2]):
        raise ValueError(
            f"gather_words: emissions {tuple(emissions.shape)} and labels {tuple(labels.shape)} do not agree"
        )
    batch, length, num_tags = emissions.shape
    if length == 0:
        return (
            emissions.new_zeros(batch, 1, num_tags),
            torch.zeros(batch, 1, dtype=torch.long, device=labels.device),
            torch.zeros(batch, 1, dtype=torch.bool, device=labels.device),
        )
    labelled = labels != ignore_index
    counts = labelled.sum(1)
    width = max(int(counts.max()) if batch else 0, 1)
    # A stable sort puts each row's labelled positions first, in their order.
    order = torch.sort((~labelled).to(torch.uint8), dim=1, stable=True).indices[:, :width]
    word_emissions = emissions.gather(1, order.unsqueeze(-1).expand(-1, -1, num_tags))
    mask = torch.arange(width, device=labels.device).unsqueeze(0) < counts.unsqueeze(1)
    word_tags = torch.where(mask, labels.gather(1, order).long(), torch.zeros_like(order))
    return word_emissions, word_tags, mask

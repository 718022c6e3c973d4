"""Shared normalisation: one question's passages compete for its answer in one softmax.

``ask`` reads ten passages and ranks the spans of all of them; a head trained window by window
(a softmax over each window's tokens and its no-answer position) never learns that the right
option of the right page must outscore an option of the page beside it, only that each is the
best of its own window. Clark and Gardner ("Simple and Effective Multi-Paragraph Reading
Comprehension", 2018) normalise the span scores of all of a question's paragraphs together; their
shared-norm model kept its accuracy as more paragraphs were read, where a per-paragraph one lost it.

Here a *group* is one question asked of several passages (``SquadExample.group``: a written pair's
chunk, its passage of whole lines, the chunk of its page without the answer and the passages
retrieval brings beside it; a SQuAD question and the other paragraph of its article it is also
asked of). Its windows go into one batch (:func:`group_batches`), and beside the usual per-window
loss (which keeps the no-answer position meaningful) the start and the end are each soft-maxed
over the context tokens of all the group's windows (:func:`shared_norm_loss`): minus the log of the
probability mass on the gold positions, wherever they are. Groups whose windows hold no answer add
nothing to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["group_batches", "shared_norm_loss"]


def group_batches(groups: np.ndarray, lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The batches of one epoch, each holding whole groups: shuffled, by length within pools.

    Groups are shuffled, sorted by their longest window within pools of about 50 batches, and
    packed in that order into batches of at most ``batch_size`` windows; a group of more windows
    than that is cut into batches of its own. Deterministic in ``(seed, epoch)`` (``--resume``).

    Args:
        groups: Per window, its group's number.
        lengths: Per window, its length in tokens.
        batch_size: Most windows in a batch.
        seed: The run's seed.
        epoch: The epoch.
    """
    rng = np.random.default_rng([seed, epoch, 1])
    order = np.argsort(groups, kind="stable")
    ids, starts = np.unique(groups[order], return_index=True)
    members = np.split(order, starts[1:]) if len(order) else []
    shuffled = [members[g] for g in rng.permutation(len(ids))]
    pool = batch_size * 50
    batches: list[np.ndarray] = []
    lo = 0
    while lo < len(shuffled):
        part, size = [], 0
        while lo < len(shuffled) and size < pool:
            part.append(shuffled[lo])
            size += len(shuffled[lo])
            lo += 1
        part.sort(key=lambda m: -int(lengths[m].max()))
        current: list[np.ndarray] = []
        filled = 0
        for m in part:
            for cut in range(0, len(m), batch_size):
                piece = m[cut : cut + batch_size]
                if filled + len(piece) > batch_size and current:
                    batches.append(np.concatenate(current))
                    current, filled = [], 0
                current.append(piece)
                filled += len(piece)
        if current:
            batches.append(np.concatenate(current))
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def shared_norm_loss(start_logits: Any, end_logits: Any, start_positions: Any, end_positions: Any,
                     context: Any, groups: Any) -> Any:
    """The shared-normalisation loss of a batch (a 0-d tensor; 0 where no group holds an answer).

    Args:
        start_logits, end_logits: ``(windows, tokens)`` logits.
        start_positions, end_positions: ``(windows,)`` gold token positions, 0 (the no-answer
            position) in a window that does not hold the answer.
        context: ``(windows, tokens)`` booleans, true on the context's tokens.
        groups: ``(windows,)`` group numbers.

    Returns:
        The mean over the groups with an answer of ``(start loss + end loss) / 2``, each minus the
        log of the probability the group's softmax over its context tokens gives its gold positions.
    """
    import torch

    losses = []
    for group in torch.unique(groups):
        rows = (groups == group).nonzero(as_tuple=True)[0]
        gold = rows[start_positions[rows] > 0]
        if len(gold) == 0:
            continue
        pair = []
        for logits, positions in ((start_logits, start_positions), (end_logits, end_positions)):
            scores = logits[rows].float().masked_fill(~context[rows], float("-inf"))
            right = logits[gold, positions[gold]].float()
            pair.append(torch.logsumexp(scores.flatten(), 0) - torch.logsumexp(right, 0))
        losses.append((pair[0] + pair[1]) / 2)
    if not losses:
        return start_logits.sum() * 0.0
    return torch.stack(losses).mean()

"""Scoring a generated answer against the gold one, as the SQuAD evaluation script does.

The answer is the generated text up to the first line break or sentence end, normalised as in the SQuAD
evaluation script (Rajpurkar et al., 2016: lower case, no punctuation, no articles); exact match
(`exact_match`) and token F1 (`token_f1`) against the gold answer.
"""

from __future__ import annotations

import re
import string

__all__ = ["exact_match", "normalize_answer", "token_f1"]


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the SQuAD evaluation's normalisation).

    Example:
        >>> normalize_answer("The  Otter!")
        'otter'
    """
    text = "".join(c for c in text.lower() if c not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _first_span(text: str) -> str:
    """The answer part of a generation: up to the first line break or sentence end."""
    return re.split(r"\n|[.!?](?:\s|$)", text.strip(), maxsplit=1)[0]


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the prediction's first span equals the gold answer after normalisation, else 0.0.

    Example:
        >>> exact_match(" otter. The town", "otter")
        1.0
    """
    return float(normalize_answer(_first_span(prediction)) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Token F1 of the prediction's first span against the gold answer (SQuAD style).

    Example:
        >>> token_f1("Dorvale in the north", "Dorvale")
        0.5
    """
    predicted = normalize_answer(_first_span(prediction)).split()
    truth = normalize_answer(gold).split()
    if not predicted or not truth:
        return float(predicted == truth)
    common = sum(min(predicted.count(w), truth.count(w)) for w in set(truth))
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(truth)
    return 2.0 * precision * recall / (precision + recall)

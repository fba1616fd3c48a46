"""A unit's lexical relevance to the question (pdcore's own rule, `pdcore.refine.refiner` says why).

The IDF-weighted share of the question's content words (stop words dropped, a light suffix strip) that
the unit contains, IDF over the units ranked; it needs no model pass.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

__all__ = ["relevance"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


def _stem(word: str) -> str:
    """A light suffix strip so that "keeps", "keep" and "keeping" (and "goats", "goat") meet."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) >= 4 else word


def _words(text: str) -> list[str]:
    """The content words of ``text``, lower case and stemmed, stop words dropped."""
    return [_stem(w) for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in _STOPWORDS]


def relevance(unit_texts: Sequence[str], query: str) -> np.ndarray:
    """IDF-weighted share of the query's content words found in each unit (0..1).

    The weights are summed in the words' sorted order, not a set's: a set's order follows the process's
    string hashing (``PYTHONHASHSEED``), and a float sum in another order can differ in its last bit.
    """
    wanted = set(_words(query))
    query_words = sorted(wanted)
    unit_words = [set(_words(t)) for t in unit_texts]
    if not query_words or not unit_words:
        return np.zeros(len(unit_texts))
    frequency = Counter(w for words in unit_words for w in words if w in wanted)
    n = len(unit_words)
    idf = {w: math.log((n + 1) / (frequency[w] + 0.5)) for w in query_words if frequency[w]}
    total = sum(idf.values())  # in sorted order: the dict keeps query_words' order
    if total <= 0.0:
        return np.zeros(len(unit_texts))
    return np.array([sum(idf[w] for w in idf if w in words) / total for words in unit_words])

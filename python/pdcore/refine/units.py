"""A prompt's units and its protected spans: what refinement keeps or drops, and what it always keeps.

`segment` splits a prompt into units covering it exactly: sentences (or phrases, split after ``,`` ``;``
``:``) and, between them, runs of whitespace holding a line break ("glue"). `default_protected` finds the
instruction and the question when the caller does not mark them; `find_spans` marks given segments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pdcore.exceptions import InvalidInputError

__all__ = ["UNITS", "Span", "check_prompt", "check_spans", "default_protected", "find_spans", "segment"]

UNITS = ("sentence", "phrase")
"""Unit kinds: whole sentences, or sentences further split after ``,`` ``;`` ``:``."""

_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s|$)")
_PHRASE_END = re.compile(r"[,;:](?=\s)")
_NEWLINES = re.compile(r"[ \t\r\f\v]*\n\s*")
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")

Span = tuple[int, int]


def check_prompt(text: str) -> str:
    """``text`` unless it is empty or blank.

    Raises:
        InvalidInputError: The prompt is empty or only whitespace.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("prompt is empty; fix: pass the prompt text to refine")
    return text


def segment(text: str, unit: str = "sentence") -> list[tuple[int, int, str]]:
    """Splits ``text`` into units covering it exactly: ``(start, end, kind)`` in order.

    A text unit carries its leading spaces (the tokenizers attach a space to the word after it); a run
    of whitespace holding a line break is a ``"glue"`` unit.

    Example:
        >>> t = "Do this.\\n\\nA b. C, d e.\\nQ?"
        >>> [t[s:e] for s, e, _ in segment(t)]
        ['Do this.', '\\n\\n', 'A b.', ' C, d e.', '\\n', 'Q?']
        >>> [kind for _, _, kind in segment(t)]
        ['text', 'glue', 'text', 'text', 'glue', 'text']
    """
    if unit not in UNITS:
        raise InvalidInputError(f"unit = {unit!r}; fix: pass one of {', '.join(UNITS)}")
    out: list[tuple[int, int, str]] = []
    position = 0
    for match in [*_NEWLINES.finditer(text), None]:
        line_end = match.start() if match is not None else len(text)
        if line_end > position:
            out.extend(_split_line(text, position, line_end, unit))
        if match is not None:
            out.append((match.start(), match.end(), "glue"))
            position = match.end()
    return out


def _split_line(text: str, start: int, end: int, unit: str) -> list[tuple[int, int, str]]:
    ends = [m.end() for m in _SENTENCE_END.finditer(text, start, end)]
    if unit == "phrase":
        ends += [m.end() for m in _PHRASE_END.finditer(text, start, end)]
    cuts = sorted({e for e in ends if start < e < end})
    pieces: list[tuple[int, int, str]] = []
    position = start
    for cut in [*cuts, end]:
        if text[position:cut].strip():
            pieces.append((position, cut, "text"))
            position = cut
    if position < end:  # trailing spaces: part of the last piece
        if pieces:
            last = pieces.pop()
            pieces.append((last[0], end, "text"))
        else:
            pieces.append((position, end, "text"))
    return pieces


def default_protected(text: str) -> list[Span]:
    """The instruction and the question, when the caller does not mark them.

    With three or more paragraphs (blocks between blank lines): the first and the last paragraph.
    Otherwise: the first and the last sentence.

    Example:
        >>> t = "Answer briefly.\\n\\nSome context. More context.\\n\\nQuestion: why?"
        >>> [t[s:e] for s, e in default_protected(t)]
        ['Answer briefly.', 'Question: why?']
    """
    check_prompt(text)
    blocks: list[Span] = []
    position = 0
    for match in [*_BLANK_LINE.finditer(text), None]:
        end = match.start() if match is not None else len(text)
        block = text[position:end]
        if block.strip():
            start = position + len(block) - len(block.lstrip())
            blocks.append((start, position + len(block.rstrip())))
        if match is not None:
            position = match.end()
    if len(blocks) >= 3:
        return [blocks[0], blocks[-1]]
    sentences = [(s, e) for s, e, kind in segment(text) if kind == "text"]
    first, last = sentences[0], sentences[-1]
    return [first] if first == last else [first, last]


def find_spans(text: str, needles: Sequence[str]) -> list[Span]:
    """The spans of every occurrence of each of ``needles`` in ``text`` (to protect marked segments).

    Raises:
        InvalidInputError: A needle is empty or does not occur in the text.
    """
    spans: list[Span] = []
    for needle in needles:
        if not needle:
            raise InvalidInputError("a protected segment is empty; fix: pass text that occurs in the prompt")
        found = [(m.start(), m.start() + len(needle)) for m in re.finditer(re.escape(needle), text)]
        if not found:
            raise InvalidInputError(
                f"protected segment {needle!r} does not occur in the prompt; fix: copy it from the prompt "
                "exactly"
            )
        spans.extend(found)
    return spans


def check_spans(spans: Sequence[Span], length: int) -> list[Span]:
    out: list[Span] = []
    for span in spans:
        try:
            start, end = int(span[0]), int(span[1])
        except (TypeError, ValueError, IndexError):
            raise InvalidInputError(
                f"protected span {span!r}; fix: pass (start, end) character offsets into the prompt"
            ) from None
        if not 0 <= start <= end <= length:
            raise InvalidInputError(
                f"protected span {span!r} lies outside the prompt of {length} characters; fix: pass "
                "(start, end) with 0 <= start <= end <= the prompt's length"
            )
        out.append((start, end))
    return out

"""The quality and device-prefill cost of refinement, on an evaluation pdcore generates from a seed.

Items (`make_items`): long-context retrieval questions built from templates, no external data set. A
passage of filler sentences about made-up towns and people (several paragraphs) hides one key fact and,
depending on the family, distractor facts of the same form; the question asks for a short span of the key
fact. Families:

- ``passkey``: "The secret password of the blue gate is otter." alone in the filler (the pass-key
  retrieval task of Mohtashami and Jaggi, 2023, arXiv 2305.16300, with a word for the key).
- ``town``: "Mira lives in the town of Dorvale." among three such facts about other people.
- ``count``: "The number of goats kept by Mira is 37." among three such facts about other people or
  other animals.

The prompt is ``instruction \\n\\n passage \\n\\n Question: ...``; the instruction and the question are the
protected spans. As in pass-key retrieval, the answer is primed: the assistant turn starts with the fact's
words up to the answer ("The secret password of the blue gate is"), so a 135M model's answer is a span
that exact match can score. Lengths are drawn uniformly between ``min_tokens`` and ``max_tokens``
(estimated from characters; the measured counts are reported), the key fact at a uniform depth.

Scoring (`exact_match`, `token_f1`): the answer is the generated text up to the first line break or
sentence end, normalised as in the SQuAD evaluation script (Rajpurkar et al., 2016: lower case, no
punctuation, no articles); exact match and token F1 against the gold answer.

Run (`evaluate`): the cloud stand-in (`LlamaScorer`, llama.cpp with all logits) scores each prompt once;
for each ratio the refined prompt goes to the device (`pdcore.runtime.device.LlamaEngine`, the live
runtime's engine), which prefills it (timed) and answers greedily. The quality drop at ``r`` is the mean
F1 at ``r = 1`` minus the mean F1 at ``r``, with a paired bootstrap 95% interval over items. The prefill
time at ``r`` is the median of ``timing_repeats`` runs of the longest item's refined prompt, the ratios
interleaved so that a change of machine load hits all of them alike.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import random
import re
import statistics
import string
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pdcore.exceptions import InvalidInputError
from pdcore.limits import LIMITS_DOC, MAX_PROFILE_SECONDS
from pdcore.refine.refiner import DEFAULT_QUESTION_WEIGHT, check_ratio, select
from pdcore.refine.scoring import CHATML

if TYPE_CHECKING:  # the runtime needs the `device` extra at import time
    from pdcore.refine.scoring import LlamaScorer, TokenSurprisal
    from pdcore.runtime.device import DeviceEngine, LlamaEngine

__all__ = [
    "DEFAULT_RATIOS",
    "FAMILIES",
    "EvalItem",
    "ItemResult",
    "QualityCurve",
    "QualityPoint",
    "evaluate",
    "exact_match",
    "make_items",
    "normalize_answer",
    "token_f1",
]

DEFAULT_RATIOS = (1.0, 0.75, 0.5, 0.35)
FAMILIES = ("passkey", "town", "count")
INSTRUCTION = "Read the passage below, then answer this question: {question}"
CHARS_PER_TOKEN = 4.1
"""Characters per SmolLM2 token of the filler text (measured on generated passages), to aim lengths."""

# fmt: off
_SYLLABLES = ("ka", "lo", "ri", "ven", "dor", "mi", "sa", "tul", "bre", "no", "fa", "zen", "ul", "gar",
    "thi", "po", "wen", "mar", "es", "il", "bo", "da", "rin", "sel", "va", "kor", "ta", "len")
_TOWN_HEADS = ("Oak", "Mill", "Stone", "River", "Ash", "Elm", "Fox", "Wolf", "Salt", "Iron", "Red",
    "Green", "Cold", "High", "Long", "Black")
_TOWN_TAILS = ("ford", "brook", "field", "haven", "wick", "stead", "dale", "bury", "mouth", "gate", "moor",
    "well")
_COLORS = ("red", "blue", "green", "yellow", "purple", "orange", "white", "black", "silver", "golden",
    "grey", "brown")
_KEYWORDS = ("otter", "falcon", "badger", "heron", "lynx", "beaver", "raven", "salmon", "walnut",
    "lantern", "anchor", "compass", "thistle", "marble", "copper", "velvet", "meadow", "harbor", "cobalt",
    "juniper", "saffron", "pepper", "quartz", "cedar")
_ANIMALS = ("goats", "sheep", "geese", "ducks", "horses", "rabbits", "pigs", "hens", "cows", "donkeys")
_GOODS = ("barley", "wool", "copper", "apples", "salt", "honey", "timber", "pottery", "linen", "olives",
    "cheese", "rope")
_PLACES = ("bell", "tower", "bridge", "mill", "harbor", "garden", "library", "fountain", "square",
    "chapel", "well", "orchard")
_SEASONS = ("spring", "summer", "autumn", "winter")
_WEATHER = ("rain", "fog", "wind", "snow", "sunshine", "frost")
_CRAFTS = ("weaving", "baking", "carpentry", "fishing", "pottery", "brewing", "dyeing", "masonry")
# fmt: on
_FILLER = (
    "The town of {town} is known for its {good} and its quiet {place}.",
    "Every {season}, traders from {town} carry {good} across the hills to {town2}.",
    "{town} was founded long ago by farmers who grew {good} near the river.",
    "The people of {town} often tell stories about the old {place} of {town2}.",
    "In {town}, the market opens early and closes when the {place} bell rings.",
    "Travellers say that the road between {town} and {town2} is lined with {good} stalls.",
    "{person} spent the {season} learning {craft} from an old master in {town}.",
    "When the {weather} came, {person} stayed indoors and mended a basket.",
    "A small boat carried {good} down the river from {town} to {town2}.",
    "The {place} in {town} was repaired after a long {season} of {weather}.",
    "{person} and {person2} once walked from {town} to {town2} in two days.",
    "Children in {town} learn {craft} before they learn to read.",
    "The guild of {craft} in {town2} meets in the {place} once a month.",
    "{person} likes to sit by the {place} and watch the {weather}.",
    "Most houses in {town} have roofs of dark slate and doors painted {color}.",
    "A festival of {good} is held in {town} at the end of {season}.",
    "Nobody in {town2} remembers who built the {place}, but everyone uses it.",
    "The {weather} in {town} rarely lasts more than a week.",
    "{person2} sells {good} at the market of {town} every morning.",
    "Old maps show a second {place} near {town}, but it has long disappeared.",
)


@dataclass(frozen=True, slots=True)
class EvalItem:
    """One generated question.

    Attributes:
        id: ``"{family}-{index}"``.
        family: One of `FAMILIES`.
        prompt: The user prompt: instruction, passage, question.
        question: The question line (``"Question: ..."``), the last paragraph of ``prompt``.
        answer: The gold answer.
        answer_prefix: Primes the assistant's answer (the key fact's words before the answer).
        fact: The key fact sentence, once in ``prompt``.
        depth: Where the key fact sits in the passage, 0 (start) to 1 (end).
        protect: Character spans of the instruction and the question in ``prompt``.
    """

    id: str
    family: str
    prompt: str
    question: str
    answer: str
    answer_prefix: str
    fact: str
    depth: float
    protect: tuple[tuple[int, int], tuple[int, int]]


def _name(rng: random.Random, taken: set[str]) -> str:
    while True:
        name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        if name not in taken:
            taken.add(name)
            return name


def _fact(
    family: str, rng: random.Random, people: Sequence[str], towns: Sequence[str]
) -> tuple[str, str, str, str, list[str]]:
    """(fact, question, answer prefix, answer, distractor facts) for one item."""
    if family == "passkey":
        color, word = rng.choice(_COLORS), rng.choice(_KEYWORDS)
        prefix = f"The secret password of the {color} gate is"
        return f"{prefix} {word}.", f"What is the secret password of the {color} gate?", prefix, word, []
    if family == "town":
        who = rng.sample(list(people), 3)
        where = rng.sample(list(towns), 3)
        facts = [f"{p} lives in the town of {t}." for p, t in zip(who, where, strict=True)]
        prefix = f"{who[0]} lives in the town of"
        return facts[0], f"In which town does {who[0]} live?", prefix, where[0], facts[1:]
    animals = rng.sample(_ANIMALS, 2)
    who = rng.sample(list(people), 2)
    counts = rng.sample(range(3, 99), 3)
    pairs = [(animals[0], who[0]), (animals[0], who[1]), (animals[1], who[0])]
    facts = [f"The number of {a} kept by {p} is {n}." for (a, p), n in zip(pairs, counts, strict=True)]
    prefix = f"The number of {animals[0]} kept by {who[0]} is"
    return facts[0], f"How many {animals[0]} does {who[0]} keep?", prefix, str(counts[0]), facts[1:]


def make_items(n: int, *, seed: int = 0, min_tokens: int = 300, max_tokens: int = 1500) -> list[EvalItem]:
    """``n`` evaluation items, the families in turn; the same arguments give the same items.

    Raises:
        InvalidInputError: ``n < 1`` or a bad length range.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInputError(f"items = {n!r}; fix: pass a whole number of items, at least 1")
    if not 100 <= min_tokens <= max_tokens:
        raise InvalidInputError(
            f"token range {min_tokens}..{max_tokens}; fix: pass 100 <= min_tokens <= max_tokens"
        )
    rng = random.Random(seed)
    items = []
    for index in range(n):
        family = FAMILIES[index % len(FAMILIES)]
        taken: set[str] = set()
        people = [_name(rng, taken) for _ in range(8)]
        towns = rng.sample([head + tail for head in _TOWN_HEADS for tail in _TOWN_TAILS], 8)
        fact, question, prefix, answer, distractors = _fact(family, rng, people, towns)
        target_chars = rng.uniform(min_tokens, max_tokens) * CHARS_PER_TOKEN
        sentences: list[str] = []
        instruction = INSTRUCTION.format(question=question)
        size = len(instruction) + len(question) + 20
        while size < target_chars:
            template = rng.choice(_FILLER)
            town, town2 = rng.sample(towns, 2)
            person, person2 = rng.sample(people, 2)
            sentence = template.format(
                town=town,
                town2=town2,
                person=person,
                person2=person2,
                good=rng.choice(_GOODS),
                place=rng.choice(_PLACES),
                season=rng.choice(_SEASONS),
                weather=rng.choice(_WEATHER),
                craft=rng.choice(_CRAFTS),
                color=rng.choice(_COLORS),
            )
            sentences.append(sentence)
            size += len(sentence) + 1
        for extra in [fact, *distractors]:
            sentences.insert(rng.randint(0, len(sentences)), extra)
        depth = sentences.index(fact) / max(1, len(sentences) - 1)
        paragraphs: list[str] = []
        position = 0
        while position < len(sentences):
            length = rng.randint(4, 8)
            paragraphs.append(" ".join(sentences[position : position + length]))
            position += length
        question_line = f"Question: {question}"
        prompt = "\n\n".join([instruction, *paragraphs, question_line])
        protect = ((0, len(instruction)), (len(prompt) - len(question_line), len(prompt)))
        items.append(
            EvalItem(
                id=f"{family}-{index}",
                family=family,
                prompt=prompt,
                question=question_line,
                answer=answer,
                answer_prefix=prefix,
                fact=fact,
                depth=depth,
                protect=protect,
            )
        )
    return items


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


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One item answered at one ratio.

    Attributes:
        item: The item's id.
        family: Its family.
        ratio: The refinement ratio.
        question_weight: The relevance weight of the refinement.
        scored_tokens: Tokens of the user prompt as scored (``L``).
        kept_tokens: Scored tokens kept.
        device_tokens: Tokens the device prefilled (chat template and answer prefix included).
        prefill_s: Wall seconds of that prefill (one run; NaN at ``r = 1``, answered by the cloud stand-in).
        fact_kept: Whether the key fact survived the refinement.
        prediction: The answer text generated after the prefix.
        exact_match: 0 or 1.
        f1: Token F1.
    """

    item: str
    family: str
    ratio: float
    question_weight: float
    scored_tokens: int
    kept_tokens: int
    device_tokens: int
    prefill_s: float
    fact_kept: bool
    prediction: str
    exact_match: float
    f1: float


@dataclass(frozen=True, slots=True)
class QualityPoint:
    """Quality and device prefill time at one ratio.

    Attributes:
        ratio: The refinement ratio ``r``.
        question_weight: The relevance weight.
        exact_match: Mean exact match, 0..1.
        f1: Mean token F1, 0..1.
        drop: ``f1(r = 1) - f1(r)`` (0.02 = two points; negative: refinement helped).
        drop_ci95: Paired bootstrap 95% interval of ``drop``.
        fact_kept: Share of items whose key fact survived.
        kept_ratio: Mean share of scored tokens kept.
        device_token_ratio: Mean device prompt tokens over those at ``r = 1``.
        prefill_s: Median prefill seconds of the timing prompt (the longest item), refined at ``r``.
        prefill_tokens: Device tokens of that prompt.
        prefill_speedup: ``prefill_s(r = 1) / prefill_s(r)``.
        prefill_runs_s: Every timed run behind ``prefill_s``, in order.
        f1_by_family: Mean F1 per family.
    """

    ratio: float
    question_weight: float
    exact_match: float
    f1: float
    drop: float
    drop_ci95: tuple[float, float]
    fact_kept: float
    kept_ratio: float
    device_token_ratio: float
    prefill_s: float
    prefill_tokens: int
    prefill_speedup: float
    prefill_runs_s: tuple[float, ...]
    f1_by_family: dict[str, float]


@dataclass(frozen=True)
class QualityCurve:
    """The quality-over-``r`` and prefill-time-over-``r`` curves of one model (the shipped data file).

    Attributes:
        name: The curve's name (``load_quality_curve`` finds shipped curves by it).
        model: The model answering and scoring.
        points: The main curve (the default question weight), ratios descending.
        ablation: Other question weights (e.g. 0: surprisal alone), same layout.
        evaluation: How it was measured (seed, items, lengths, machine, ...).
        results: Per-item results (not written to the data file).
    """

    name: str
    model: str
    points: tuple[QualityPoint, ...]
    ablation: tuple[QualityPoint, ...] = ()
    evaluation: Mapping[str, Any] = field(default_factory=dict)
    results: tuple[ItemResult, ...] = ()

    def drops(self) -> dict[float, float]:
        """Ratio to quality drop of the main curve (the optimizer's ``quality`` argument)."""
        return {p.ratio: p.drop for p in self.points}

    def to_toml(self) -> str:
        """The data file's text (`load_quality_curve` reads it back)."""
        lines = [
            "# Quality and device prefill time of prompt refinement (pdcore.refine.evaluation).",
            "# drop = mean token F1 at r = 1 minus mean token F1 at r (absolute; 0.02 = 2 points).",
            f"name = {_toml_value(self.name)}",
            f"model = {_toml_value(self.model)}",
            'metric = "f1"',
            "",
            "[evaluation]",
        ]
        lines += [f"{key} = {_toml_value(value)}" for key, value in self.evaluation.items()]
        for table, points in (("point", self.points), ("ablation", self.ablation)):
            for p in points:
                lines += ["", f"[[{table}]]"]
                for key in QualityPoint.__slots__:
                    value = getattr(p, key)
                    if key != "f1_by_family":
                        lines.append(f"{key} = {_toml_value(value)}")
                lines.append(
                    "f1_by_family = { "
                    + ", ".join(f"{k} = {_toml_value(v)}" for k, v in sorted(p.f1_by_family.items()))
                    + " }"
                )
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, table: Mapping[str, Any], source: str) -> QualityCurve:
        """Reads a parsed data file.

        Raises:
            InvalidInputError: A key is missing or a value is out of range (named with ``source``).
        """

        def points(key: str) -> tuple[QualityPoint, ...]:
            raw = table.get(key, [])
            if not isinstance(raw, list):
                raise InvalidInputError(
                    f"{source}: [[{key}]] must be an array of tables; fix: write [[{key}]]"
                )
            out = []
            for index, entry in enumerate(raw):
                try:
                    values = {k: entry[k] for k in QualityPoint.__slots__}
                    values["drop_ci95"] = (float(entry["drop_ci95"][0]), float(entry["drop_ci95"][1]))
                    values["prefill_runs_s"] = tuple(float(v) for v in entry["prefill_runs_s"])
                    values["f1_by_family"] = {str(k): float(v) for k, v in entry["f1_by_family"].items()}
                    point = QualityPoint(**values)
                    check_ratio(point.ratio)
                    if not math.isfinite(float(point.drop)):
                        raise ValueError
                except (
                    KeyError,
                    TypeError,
                    ValueError,
                    IndexError,
                    AttributeError,
                ) as exc:
                    missing = f"missing key {exc}" if isinstance(exc, KeyError) else "a bad value"
                    raise InvalidInputError(
                        f"{source}: [[{key}]] entry {index} has {missing}; fix: write every key of a "
                        "QualityPoint with a ratio in (0, 1] and a finite drop"
                    ) from None
                _check_point(point, f"{source}: [[{key}]] entry {index}")
                out.append(point)
            return tuple(out)

        main = points("point")
        if not main:
            raise InvalidInputError(f"{source}: no [[point]] entries; fix: add the measured points")
        evaluation = table.get("evaluation", {})
        return cls(
            name=str(table.get("name", "")),
            model=str(table.get("model", "")),
            points=main,
            ablation=points("ablation"),
            evaluation=dict(evaluation) if isinstance(evaluation, Mapping) else {},
        )


def _check_point(point: QualityPoint, where: str) -> None:
    """Refuses what no measurement can give: a reversed interval, negative or absurd times, scores
    outside [0, 1]."""
    low, high = point.drop_ci95
    no_interval = math.isnan(low) and math.isnan(high)  # the file has no interval: nan on both ends
    if not no_interval and not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise InvalidInputError(
            f"{where}: drop_ci95 = [{low!r}, {high!r}] is not an interval (low above high, or not finite); "
            "fix: write [low, high] with low <= high, or [nan, nan] for none"
        )
    times = {"prefill_s": float(point.prefill_s)} | {
        f"prefill_runs_s[{i}]": float(v) for i, v in enumerate(point.prefill_runs_s)
    }
    for key, value in times.items():
        if not (math.isnan(value) or 0.0 <= value <= MAX_PROFILE_SECONDS):
            raise InvalidInputError(
                f"{where}: {key} = {value!r}; fix: a time must be from 0 to {MAX_PROFILE_SECONDS:g} s "
                f"(limits: {LIMITS_DOC})"
            )
    scores = {"f1": point.f1, "exact_match": point.exact_match, "fact_kept": point.fact_kept}
    for key, value in scores.items():
        if not 0.0 <= float(value) <= 1.0:
            raise InvalidInputError(f"{where}: {key} = {value!r}; fix: a score must be in [0, 1]")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(round(value, 4))
    if isinstance(value, str):
        if "\n" in value:
            return '"""\n' + value.replace("\\", "\\\\").replace('"""', '\\"""') + '"""'
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _bootstrap_drop(
    base: np.ndarray, refined: np.ndarray, seed: int, resamples: int = 2000
) -> tuple[float, float]:
    """Paired bootstrap 95% interval of ``mean(base) - mean(refined)``."""
    diff = base - refined
    if diff.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(resamples, diff.size))].mean(axis=1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _answer_done(text: str) -> bool:
    """Whether a generated answer is complete: a line break or a sentence end after some text."""
    return "\n" in text.strip() or re.search(r"\S[.!?](\s|$)", text) is not None


def _device_answer(engine: DeviceEngine, prompt: str, max_new_tokens: int) -> tuple[str, int, float]:
    """The device's greedy answer to ``prompt``: (text, prompt tokens, prefill seconds)."""
    tokens = engine.tokenize(prompt, prompt=True)
    engine.reset()
    started = time.perf_counter()
    engine.eval(tokens)
    prefill_s = time.perf_counter() - started
    raw = b""
    for _ in range(max_new_tokens):
        token = engine.greedy()
        if engine.is_eog(token):
            break
        raw += engine.token_bytes(token)
        if _answer_done(raw.decode("utf-8", errors="ignore")):
            break
        engine.eval([token])
    return raw.decode("utf-8", errors="replace"), len(tokens), prefill_s


def _prefill_once(engine: DeviceEngine, prompt: str) -> tuple[int, float]:
    tokens = engine.tokenize(prompt, prompt=True)
    engine.reset()
    started = time.perf_counter()
    engine.eval(tokens)
    return len(tokens), time.perf_counter() - started


def evaluate(
    items: Sequence[EvalItem],
    *,
    model_path: str | os.PathLike[str],
    ratios: Sequence[float] = DEFAULT_RATIOS,
    question_weight: float = DEFAULT_QUESTION_WEIGHT,
    ablation_weights: Sequence[float] = (0.0,),
    ablation_ratios: Sequence[float] = (0.5,),
    n_threads: int = 2,
    timing_repeats: int = 3,
    max_new_tokens: int = 8,
    seed: int = 0,
    name: str = "smollm2-135m",
    on_step: Callable[[str], None] | None = None,
) -> QualityCurve:
    """Answers every item at every ratio and builds the curves (module docstring).

    The answer at ``r = 1`` is the cloud stand-in's greedy continuation of the prompt it has just scored
    (the same model and prompt as the device's unrefined prefill, without a second prefill); answers at
    ``r < 1`` come from the device.

    Args:
        items: The evaluation items (`make_items`).
        model_path: The GGUF model: the cloud stand-in scores with it and the device answers with it.
        ratios: Refinement ratios; 1.0 is added when missing (the baseline).
        question_weight: The relevance weight of the main curve.
        ablation_weights: Further weights (0: surprisal alone), measured at ``ablation_ratios``.
        ablation_ratios: The ratios of the ablation.
        n_threads: llama.cpp threads of both models.
        timing_repeats: Prefill runs per ratio of the timing prompt.
        max_new_tokens: The longest answer, tokens.
        seed: Recorded in the file and seeds the bootstrap (the items' seed, normally).
        name: The curve's name.
        on_step: Called with a short label after each item and each timing round.

    Raises:
        InvalidInputError: No items, a bad ratio, or a missing model or llama-cpp-python.
    """
    from pdcore.refine.scoring import LlamaScorer  # noqa: PLC0415  # reason: needs llama-cpp-python
    from pdcore.runtime.device import LlamaEngine  # noqa: PLC0415  # reason: needs llama-cpp-python

    if not items:
        raise InvalidInputError("no evaluation items; fix: pass at least one item (make_items)")
    if timing_repeats < 1:
        raise InvalidInputError(f"timing_repeats = {timing_repeats!r}; fix: pass at least 1")
    grid = sorted({check_ratio(r) for r in ratios} | {1.0}, reverse=True)
    main_weight = float(question_weight)
    variants = [(r, main_weight) for r in grid] + [
        (check_ratio(r), float(w))
        for w in ablation_weights
        if float(w) != main_weight
        for r in sorted(set(ablation_ratios), reverse=True)
        if r < 1.0
    ]
    load_before = _load_average()
    started = time.perf_counter()
    scorer = LlamaScorer(model_path, n_threads=n_threads)
    engine = LlamaEngine(model_path, n_threads=n_threads)
    results: list[ItemResult] = []
    longest: tuple[int, EvalItem, dict[tuple[float, float], str]] | None = None
    for item in items:
        scores = scorer.score(item.prompt, prefix=CHATML[0], suffix=CHATML[1] + item.answer_prefix)
        refined: dict[tuple[float, float], str] = {}
        for ratio, weight in variants:
            result, refined[ratio, weight] = _answer(
                item, scores, ratio, weight, scorer=scorer, engine=engine, max_new_tokens=max_new_tokens
            )
            results.append(result)
        if longest is None or len(scores) > longest[0]:
            longest = (len(scores), item, refined)
        if on_step is not None:
            on_step(item.id)
    assert longest is not None  # items is not empty
    _, timing_item, timing_texts = longest
    timing = _time_prefills(engine, timing_item, timing_texts, timing_repeats, on_step)
    wall_s = time.perf_counter() - started
    measured = _Measured(items, results, timing, main_weight, seed)
    scored = [measured.row(i, 1.0, main_weight).scored_tokens for i in items]
    evaluation: dict[str, Any] = {
        "seed": seed,
        "items": len(items),
        "families": sorted({i.family for i in items}),
        "scored_tokens_min": min(scored),
        "scored_tokens_mean": round(float(np.mean(scored)), 1),
        "scored_tokens_max": max(scored),
        "ratios": grid,
        "question_weight": main_weight,
        "unit": "sentence",
        "max_new_tokens": max_new_tokens,
        "n_threads": n_threads,
        "timing_item": timing_item.id,
        "timing_repeats": timing_repeats,
        "wall_s": round(wall_s, 1),
        "load_average_1min": [load_before, _load_average()],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "model_file": Path(model_path).name,
        "llama_cpp_python": _version("llama_cpp_python"),
        "python": platform.python_version(),
        "how": _HOW,
    }
    return QualityCurve(
        name=name,
        model=engine.describe(),
        points=tuple(measured.point(r, main_weight) for r in grid),
        ablation=tuple(measured.point(r, w) for r, w in variants if w != main_weight),
        evaluation=evaluation,
        results=tuple(results),
    )


def _load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan


def _answer(
    item: EvalItem,
    scores: TokenSurprisal,
    ratio: float,
    weight: float,
    *,
    scorer: LlamaScorer,
    engine: LlamaEngine,
    max_new_tokens: int,
) -> tuple[ItemResult, str]:
    """One item answered at one ratio and relevance weight, and the refined text it was answered from.

    At ``r = 1`` the cloud stand-in answers (its greedy continuation of the prompt it just scored);
    below, the device answers from the refined prompt.
    """
    from pdcore.runtime.device import chatml  # noqa: PLC0415  # reason: needs llama-cpp-python

    refinement = select(scores, ratio, protect=item.protect, question_weight=weight)
    prompt = chatml(refinement.text) + item.answer_prefix
    if ratio == 1.0:
        prediction = scorer.generate(max_new_tokens, stop=_answer_done)
        device_tokens, prefill_s = len(engine.tokenize(prompt, prompt=True)), math.nan
    else:
        prediction, device_tokens, prefill_s = _device_answer(engine, prompt, max_new_tokens)
    result = ItemResult(
        item=item.id,
        family=item.family,
        ratio=ratio,
        question_weight=weight,
        scored_tokens=refinement.total_tokens,
        kept_tokens=refinement.kept_tokens,
        device_tokens=device_tokens,
        prefill_s=prefill_s,
        fact_kept=item.fact in refinement.text,
        prediction=prediction,
        exact_match=exact_match(prediction, item.answer),
        f1=token_f1(prediction, item.answer),
    )
    return result, refinement.text


@dataclass(frozen=True)
class _Timing:
    """Device prefill times of the timing item's refined prompts, per (ratio, weight)."""

    runs_s: dict[tuple[float, float], list[float]]
    tokens: dict[tuple[float, float], int]


def _time_prefills(
    engine: DeviceEngine,
    item: EvalItem,
    texts: Mapping[tuple[float, float], str],
    repeats: int,
    on_step: Callable[[str], None] | None,
) -> _Timing:
    """Prefills each refined text of ``item`` ``repeats`` times, every variant once per round."""
    from pdcore.runtime.device import chatml  # noqa: PLC0415  # reason: needs llama-cpp-python

    timing = _Timing(runs_s={key: [] for key in texts}, tokens={})
    for repeat in range(repeats):
        for key, text in texts.items():
            n_tokens, seconds = _prefill_once(engine, chatml(text) + item.answer_prefix)
            timing.tokens[key] = n_tokens
            timing.runs_s[key].append(seconds)
        if on_step is not None:
            on_step(f"timing {repeat + 1}/{repeats}")
    return timing


class _Measured:
    """Every item's results and the prefill timings, reduced to one `QualityPoint` per variant."""

    def __init__(
        self,
        items: Sequence[EvalItem],
        results: Sequence[ItemResult],
        timing: _Timing,
        main_weight: float,
        seed: int,
    ) -> None:
        self.items = items
        self.timing = timing
        self.main_weight = main_weight
        self.seed = seed
        self._by_key = {(r.item, r.ratio, r.question_weight): r for r in results}
        self._base_f1 = np.array([self.row(i, 1.0, main_weight).f1 for i in items])
        self._base_time = statistics.median(timing.runs_s[1.0, main_weight])

    def row(self, item: EvalItem, ratio: float, weight: float) -> ItemResult:
        """The result of ``item`` at one variant."""
        return self._by_key[item.id, ratio, weight]

    def point(self, ratio: float, weight: float) -> QualityPoint:
        """Quality against the unrefined answers (paired bootstrap interval), and prefill time."""
        rows = [self.row(i, ratio, weight) for i in self.items]
        f1 = np.array([r.f1 for r in rows])
        seconds = statistics.median(self.timing.runs_s[ratio, weight])
        base_tokens = [self._by_key[r.item, 1.0, self.main_weight].device_tokens for r in rows]
        return QualityPoint(
            ratio=ratio,
            question_weight=weight,
            exact_match=float(np.mean([r.exact_match for r in rows])),
            f1=float(f1.mean()),
            drop=float(self._base_f1.mean() - f1.mean()),
            drop_ci95=_bootstrap_drop(self._base_f1, f1, self.seed),
            fact_kept=float(np.mean([r.fact_kept for r in rows])),
            kept_ratio=float(np.mean([r.kept_tokens / r.scored_tokens for r in rows])),
            device_token_ratio=float(
                np.mean([r.device_tokens / b for r, b in zip(rows, base_tokens, strict=True)])
            ),
            prefill_s=seconds,
            prefill_tokens=self.timing.tokens[ratio, weight],
            prefill_speedup=self._base_time / seconds if seconds > 0 else math.nan,
            prefill_runs_s=tuple(self.timing.runs_s[ratio, weight]),
            f1_by_family={
                family: float(np.mean([r.f1 for r in rows if r.family == family]))
                for family in sorted({r.family for r in rows})
            },
        )


_HOW = (
    "Items: pdcore.refine.evaluation.make_items(items, seed=seed), templated long-context retrieval "
    "(passkey, town, count). The cloud stand-in (llama.cpp, logits_all) prefills each "
    "ChatML prompt once, which gives the surprisal and, continued greedily, the answer at r = 1. "
    "pdcore.refine.select keeps the instruction and the question and the best sentences within "
    "floor(r * L) scored tokens; the device (pdcore.runtime.device.LlamaEngine, the same model) prefills "
    "chatml(refined) + answer prefix and answers greedily. EM and F1 as in the SQuAD script, on the answer "
    "up to its first sentence end. drop = mean F1 at r = 1 minus mean F1 at r, with a paired bootstrap 95% "
    "interval over items (2000 resamples). prefill_s: median of timing_repeats prefill runs of the longest "
    "item refined at r, the ratios interleaved; prefill_speedup = prefill_s(1) / prefill_s(r)."
)

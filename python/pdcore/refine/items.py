"""The bundled evaluation's items: long-context retrieval questions pdcore generates from a seed.

Items (`make_items`) are built from templates, no external data set. A passage of filler sentences about
made-up towns and people (several paragraphs) hides one key fact and, depending on the family, distractor
facts of the same form; the question asks for a short span of the key fact. Families:

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
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from pdcore.exceptions import InvalidInputError

__all__ = ["CHARS_PER_TOKEN", "FAMILIES", "INSTRUCTION", "EvalItem", "make_items"]

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

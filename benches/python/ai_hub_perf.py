"""Qualcomm AI Hub's per-model performance files (quic/ai-hub-models, ``qai_hub_models/models/<model>/
perf.yaml``, schema ``qai_hub_models/configs/perf_yaml.py``): the reader `benches/python/device_check.py`
uses.

Only the YAML the perf files use is read (block mappings and sequences, plain scalars, comments); anything
else is refused naming the line (ours: no YAML library is a dependency of pdcore). Each chip's Genie LLM
metrics become a `Published` record. AI Hub publishes a TTFT *range* per chip: the minimum is a prompt of up
to `CHUNK` tokens (one prefill chunk) and the maximum the model's whole context (``context_length``);
`Published.ttft_s` reads it linearly in the prompt length between the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CHUNK", "Published", "parse_perf_yaml", "published_figures"]

CHUNK = 128
"""AI Hub's shortest prompt: its TTFT minimum is a prompt of up to this many tokens."""


def _scalar(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip("'\"")


def parse_perf_yaml(text: str, source: str) -> Any:
    """The block-style YAML of an AI Hub perf file as dicts, lists and scalars (module docstring).

    Raises:
        ValueError: A construct the perf files do not use, named with its line and the fix.
    """
    lines: list[tuple[int, str, int]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        content = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not content.strip():
            continue
        stripped = content.lstrip()
        item = stripped.removeprefix("- ")
        value = item.partition(": ")[2] if ": " in item else item
        if value.lstrip()[:1] in set("{[&*|>!") or stripped.endswith(("|", ">")) or "\t" in content:
            raise ValueError(
                f"{source}:{number}: {stripped!r} is YAML this reader does not take (flow, anchors, block "
                "scalars or tabs); fix: pass an AI Hub perf.yaml as published"
            )
        lines.append((len(content) - len(stripped), stripped, number))

    def block(index: int, indent: int) -> tuple[Any, int]:
        if lines[index][1].startswith("- "):
            items: list[Any] = []
            while index < len(lines) and lines[index][0] == indent and lines[index][1].startswith("- "):
                rest = lines[index][1][2:]
                if ":" not in rest.split(" ")[0] and not rest.rstrip().endswith(":"):
                    items.append(_scalar(rest))
                    index += 1
                    continue
                lines[index] = (indent + 2, rest, lines[index][2])
                value, index = block(index, indent + 2)
                items.append(value)
            return items, index
        mapping: dict[str, Any] = {}
        while index < len(lines) and lines[index][0] == indent and not lines[index][1].startswith("- "):
            key, colon, rest = lines[index][1].partition(":")
            if not colon:
                raise ValueError(f"{source}:{lines[index][2]}: expected 'key: value'; fix: check the file")
            index += 1
            if rest.strip():
                mapping[key.strip()] = _scalar(rest.strip())
            elif (
                index < len(lines)
                and lines[index][0] >= indent
                and (lines[index][0] > indent or lines[index][1].startswith("- "))
            ):
                mapping[key.strip()], index = block(index, lines[index][0])
            else:
                mapping[key.strip()] = None
        return mapping, index

    if not lines:
        raise ValueError(f"{source}: empty; fix: pass an AI Hub perf.yaml")
    value, end = block(0, lines[0][0])
    if end != len(lines):
        raise ValueError(
            f"{source}:{lines[end][2]}: indentation out of place; fix: pass the file as published"
        )
    return value


@dataclass(frozen=True)
class Published:
    """One chip's LLM figures in an AI Hub perf file."""

    component: str
    precision: str
    chip: str
    context_length: int
    ttft_min_s: float
    ttft_max_s: float
    tokens_per_second: float

    def ttft_s(self, prompt: int) -> float | None:
        """AI Hub's TTFT read linearly between its range's ends (module docstring); None past the context."""
        if prompt > self.context_length:
            return None
        if prompt <= CHUNK:
            return self.ttft_min_s
        share = (prompt - CHUNK) / (self.context_length - CHUNK)
        return self.ttft_min_s + share * (self.ttft_max_s - self.ttft_min_s)


def published_figures(perf: Any) -> list[Published]:
    """Every (component, precision, chip) entry of a parsed perf file with Genie LLM metrics."""
    found = []
    for precision, entry in (perf.get("precisions") or {}).items():
        for component, metrics in (entry.get("components") or {}).items():
            for chip, engines in (metrics.get("performance_metrics") or {}).items():
                for row in (engines.get("genie") or {}).get("llm_metrics") or []:
                    ttft = row["time_to_first_token_range_milliseconds"]
                    found.append(
                        Published(
                            component,
                            precision,
                            chip,
                            int(row["context_length"]),
                            float(ttft["min"]) / 1e3,
                            float(ttft["max"]) / 1e3,
                            float(row["tokens_per_second"]),
                        )
                    )
    return found

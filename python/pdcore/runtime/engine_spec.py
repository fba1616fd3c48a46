"""`EngineSpec`: how a worker process builds its device engine, a picklable recipe (the model is opened
in the child, `pdcore.runtime.worker`)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pdcore.exceptions import InvalidInputError

__all__ = ["EngineSpec"]


@dataclass(frozen=True)
class EngineSpec:
    """How to build an engine in the worker: ``factory`` (``"module:name"``) called with ``kwargs``.

    Attributes:
        factory: A callable's import path, e.g. ``"pdcore.runtime.engine:LlamaEngine"``.
        kwargs: Its keyword arguments (picklable).
        label: A name for messages (the model file's name).
    """

    factory: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    label: str = "device engine"

    def build(self) -> Any:
        """Imports the factory and calls it (in the worker).

        Raises:
            InvalidInputError: ``factory`` is not ``"module:name"`` of an importable callable.
        """
        module_name, _, name = self.factory.partition(":")
        try:
            built = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError, ValueError):
            raise InvalidInputError(
                f"engine factory {self.factory!r} cannot be imported; fix: pass 'module:callable'"
            ) from None
        return built(**dict(self.kwargs))

    @classmethod
    def llama(cls, model_path: str | os.PathLike[str], **kwargs: Any) -> EngineSpec:
        """A GGUF model run by `pdcore.runtime.engine.LlamaEngine`."""
        return cls(
            "pdcore.runtime.engine:LlamaEngine",
            {"model_path": os.fspath(model_path), **kwargs},
            label=os.path.basename(os.fspath(model_path)),
        )

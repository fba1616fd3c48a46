"""Old names kept for one release: the table of renamed keywords and the one warning every old name raises.

Ground floor: it imports nothing of pdcore's. A function or class whose keyword was renamed is decorated
with `accepts_renamed_keywords`, which moves an old spelling under its new name with a `DeprecationWarning`
naming the new one; the native module's bindings hand their unknown keywords to the same
`renamed_keywords`. A renamed attribute keeps its old name as a `RenamedAttribute` (module attributes
through `deprecated_attributes`, a module ``__getattr__``), which warns through `warn_renamed`.
``docs/names.md`` lists the names and their old ones.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

__all__ = [
    "RENAMED_KEYWORDS",
    "RenamedAttribute",
    "accepts_renamed_keywords",
    "deprecated_attributes",
    "renamed_keywords",
    "warn_renamed",
]

RENAMED_KEYWORDS: Mapping[str, str] = MappingProxyType(
    {
        "max_tpot": "max_tpot_s",
        "min_tpot": "min_tpot_s",
        "profile": "device_profile",
    }
)
"""Every renamed keyword argument: old name to new name (``docs/names.md``)."""

F = TypeVar("F", bound=Callable[..., Any])


def warn_renamed(where: str, old: str, new: str, *, stacklevel: int = 2) -> None:
    """Warns that ``where`` was given ``old``, the old name of ``new``: a `DeprecationWarning`.

    Args:
        where: The function, class or module the name belongs to, e.g. ``"Plan"``.
        old: The old name, as the caller wrote it (``"max_tpot="`` for a keyword).
        new: The name to use instead.
        stacklevel: Whose line the warning points at, counted from the caller of this function (1: the
            caller itself; 2: its caller).
    """
    warnings.warn(
        f"{where}: {old} is deprecated and will be removed in the next release; use {new}",
        DeprecationWarning,
        stacklevel=stacklevel + 1,
    )


def renamed_keywords(
    where: str, kwargs: Mapping[str, object], accepted: Collection[str], *, stacklevel: int = 2
) -> dict[str, object]:
    """``kwargs`` with each old spelling of a name in ``accepted`` moved under the new name, warned about.

    Args:
        where: The function or class the keywords were given to, e.g. ``"Plan"``.
        kwargs: The keyword arguments as given.
        accepted: The new names the function takes.
        stacklevel: Whose line the warning points at, counted from the caller of this function (1: the
            caller itself; 2: its caller, the usual case for a function that received ``kwargs``).

    Returns:
        A new dict; keywords without a renamed spelling pass through as they are.

    Raises:
        TypeError: An old name given together with its new one.
    """
    moved = dict(kwargs)
    for old, new in RENAMED_KEYWORDS.items():
        if old not in moved or new not in accepted:
            continue
        if new in moved:
            raise TypeError(f"{where}() got {old}= and {new}=, the same argument; pass {new}= only")
        warn_renamed(where, f"{old}=", f"{new}=", stacklevel=stacklevel + 1)
        moved[new] = moved.pop(old)
    return moved


def accepts_renamed_keywords(function: F) -> F:
    """Lets ``function`` (a function, an ``__init__``, or a class: its ``__init__``, e.g. a dataclass's)
    take the old spellings of its renamed keywords.

    Its signature stays the new one (``inspect.signature`` follows the wrapper to it); an old keyword is
    moved under its new name with a `DeprecationWarning` pointing at the caller.
    """
    if isinstance(function, type):
        function.__init__ = accepts_renamed_keywords(function.__init__)  # type: ignore[misc]  # reason: wrapping it is the point
        return function
    parameters = inspect.signature(function).parameters
    accepted = frozenset(name for name in RENAMED_KEYWORDS.values() if name in parameters)
    initializer = function.__name__ == "__init__"

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not kwargs.keys().isdisjoint(RENAMED_KEYWORDS):
            where = type(args[0]).__name__ if initializer and args else function.__qualname__
            kwargs = renamed_keywords(where, kwargs, accepted, stacklevel=2)
        return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]  # reason: functools.wraps keeps the signature


class RenamedAttribute:
    """The old name of an attribute, as a class attribute: reads and writes the new one, with a warning.

    Example: ``max_tpot = RenamedAttribute("max_tpot_s")`` in a class body (without an annotation, so a
    dataclass does not take it for a field).
    """

    def __init__(self, new: str) -> None:
        self.new = new
        self.old = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.old = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        if not hasattr(instance, self.new):  # an object without the new attribute lacks the old one too
            raise AttributeError(f"{type(instance).__name__!r} object has no attribute {self.old!r}")
        warn_renamed(type(instance).__name__, self.old, self.new)
        return getattr(instance, self.new)

    def __set__(self, instance: object, value: object) -> None:
        warn_renamed(type(instance).__name__, self.old, self.new)
        setattr(instance, self.new, value)


def deprecated_attributes(module: str, renamed: Mapping[str, tuple[str, object]]) -> Callable[[str], object]:
    """A module ``__getattr__`` that serves each old attribute name with a `DeprecationWarning`.

    Args:
        module: The module's name, e.g. ``"pdcore.slo"``.
        renamed: Old attribute name to ``(new name, the object)``.
    """

    def __getattr__(name: str) -> object:  # noqa: N807  # reason: the module hook's name
        if name not in renamed:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new, value = renamed[name]
        warn_renamed(module, name, new)
        return value

    return __getattr__

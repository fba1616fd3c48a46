"""The registry of built-in policies by name, and `make_policy`, which builds one from a spec such as
``"pd-device:k=8:refine_ratio=0.5"`` (the registry's table: `pdcore.policies.builtin`)."""

from __future__ import annotations

import inspect
import re
from typing import Any

from pdcore.deprecation import RENAMED_KEYWORDS
from pdcore.exceptions import InvalidInputError
from pdcore.limits import parse_bool
from pdcore.policies.base import Policy
from pdcore.policies.fixed import CloudOnly, DeviceOnly, KVTransfer, Race
from pdcore.policies.rivals import DiSCo, Router, SpecDecoding
from pdcore.policies.split import NaiveSplit, PDDevice

__all__ = ["POLICIES", "make_policy", "split_policy_specs"]


POLICIES: dict[str, type[Policy]] = {
    cls.name: cls
    for cls in (CloudOnly, DeviceOnly, PDDevice, NaiveSplit, KVTransfer, Race, DiSCo, Router, SpecDecoding)
}
"""The built-in policies by registry name. Add your own class here to make it available by name."""


_INTEGER = re.compile(r"[+-]?[0-9]+")
_MAX_DIGITS = 400
"""The longest integer a setting may spell (Python reads at most 4,300 digits; no setting needs 400)."""
_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _parse_value(text: str, annotation: Any, where: str) -> Any:
    """A setting's value, read by the parameter's type: booleans strictly, numbers in full, else text."""
    hint = str(annotation)
    if hint == "bool":
        return parse_bool(text, where)
    if _INTEGER.fullmatch(text):
        if len(text) > _MAX_DIGITS:
            raise InvalidInputError(
                f"{where} = {text[:20]}... has {len(text)} digits; fix: pass a number in range"
            )
        return int(text)
    if _REAL.fullmatch(text):
        return float(text)
    if "float" in hint and text.lower() in {"nan", "inf", "+inf", "-inf", "infinity"}:
        raise InvalidInputError(f"{where} = {text!r} is not finite; fix: pass a real number")
    return text


def make_policy(spec: str) -> Policy:
    """Builds a policy from ``name`` or ``name:key=value:key=value`` (e.g. ``"pd-device:k=8"``).

    Settings are separated by ``:`` or ``,`` (``"pd-device:refine_ratio=auto,quality_budget=0.01"``), so
    a value cannot contain either. Values are read as integers, then floats, else strings (``auto``, a
    curve's name or path). With settings, the policy's ``name`` becomes the whole ``spec`` so that reports
    tell variants apart.

    Raises:
        InvalidInputError: ``spec`` is not text, the name is not in `POLICIES`, a setting is malformed or
            the class does not take it, or the class rejects a value.
    """
    if not isinstance(spec, str):
        raise InvalidInputError(
            f"policy spec = {spec!r} is not text; fix: pass a policy name with optional settings, e.g. "
            "'pd-device' or 'pd-device:k=8'"
        )
    name, sep, rest = spec.strip().partition(":")
    settings = re.split(r"[:,]", rest) if sep else []
    cls = POLICIES.get(name)
    if cls is None:
        raise InvalidInputError(
            f"unknown policy {name!r}; fix: use one of {', '.join(sorted(POLICIES))} "
            "(optionally with settings, e.g. pd-device:k=8)"
        )
    parameters = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {}
    named: set[str] = set()
    for setting in settings:
        key, sep, value = setting.partition("=")
        key = key.strip()
        # an old setting name goes to the class as given, which warns and renames it
        new = key if key in parameters else RENAMED_KEYWORDS.get(key, key)
        if not sep or not key or new not in parameters:
            known = ", ".join(parameters) or "none"
            raise InvalidInputError(
                f"policy {spec!r}: bad setting {setting!r}; fix: write key=value with a key of {name} "
                f"({known})"
            )
        if new in named:
            raise InvalidInputError(f"policy {spec!r} sets {new} twice; fix: give each setting once")
        named.add(new)
        kwargs[key] = _parse_value(value.strip(), parameters[new].annotation, f"policy {spec!r}: {key}")
    try:
        policy = cls(**kwargs)
    except InvalidInputError as exc:
        if settings and not str(exc).startswith("policy "):
            raise InvalidInputError(f"policy {spec!r}: {exc}") from None
        raise
    if settings:
        policy.name = spec.strip()
    return policy


def split_policy_specs(text: str) -> list[str]:
    """Splits a comma-separated list of `make_policy` specs, keeping comma-separated settings together.

    An item ``key=value`` (no ``:`` before its ``=``) cannot be a policy name, so it continues the
    previous spec: ``"cloud-only,pd-device:refine_ratio=auto,quality_budget=0.01"`` is two specs.

    Example:
        >>> split_policy_specs("cloud-only,pd-device:refine_ratio=auto,quality_budget=0.01")
        ['cloud-only', 'pd-device:refine_ratio=auto,quality_budget=0.01']
    """
    if not isinstance(text, str):
        raise InvalidInputError(
            f"policy specs = {text!r} is not text; fix: pass comma-separated policy specs, e.g. "
            "'cloud-only,pd-device:k=8'"
        )
    specs: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        head, sep, _ = item.partition("=")
        if sep and ":" not in head and specs:
            specs[-1] += "," + item
        else:
            specs.append(item)
    return specs

"""pdcore's exception tree.

The base classes are created by the native core (``pdcore._core``) so that Rust and Python raise the same
types; the Python-only subclasses below add the input they name.

- ``PdcoreError``: every error pdcore raises on purpose.
- ``InvalidInputError(PdcoreError, ValueError)``: a bad argument, trace row or profile value. The message
  names the input, where it is (index, file, line, column) and the fix.
- ``InvalidStateError(PdcoreError, RuntimeError)``: a call the object's state does not allow (showing a
  token that has not arrived, generating before the hand-off).
- ``DeadlineMissedError(PdcoreError, RuntimeError)``: the live runtime in strict mode fell behind the
  wall clock by more than its tolerance.
"""

from __future__ import annotations

from pdcore._core import DeadlineMissedError, InvalidInputError, InvalidStateError, PdcoreError

__all__ = [
    "DeadlineMissedError",
    "InvalidInputError",
    "InvalidStateError",
    "PdcoreError",
    "ProfileError",
    "TraceFormatError",
]


class TraceFormatError(InvalidInputError):
    """A request trace could not be read: the message names the file, line, column and fix."""


class ProfileError(InvalidInputError):
    """A device, cloud or network profile is invalid: the message names the file, key and fix."""

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
- ``CloudError(PdcoreError)``: the live runtime's cloud stream failed; ``CloudUnavailableError`` (nothing
  arrived; ``CloudContextError``, the request exceeds the server's context window) or
  ``CloudStreamCutError`` (the stream broke off after some text). ``pdcore.runtime`` re-exports them.
- ``DeviceFailedError(PdcoreError)``: the live runtime's device engine crashed, was killed, hung past its
  deadline or could not start; ``cause`` says which in a few words, the message names the fix.
- ``TraceFetchError(PdcoreError)``: a public trace could not be downloaded (no network, an HTTP error, a
  server that went silent); the message names the URL and the fix.
"""

from __future__ import annotations

from pdcore._core import DeadlineMissedError, InvalidInputError, InvalidStateError, PdcoreError

__all__ = [
    "CloudContextError",
    "CloudError",
    "CloudStreamCutError",
    "CloudUnavailableError",
    "DeadlineMissedError",
    "DeviceFailedError",
    "InvalidInputError",
    "InvalidStateError",
    "PdcoreError",
    "ProfileError",
    "TraceFetchError",
    "TraceFormatError",
]


class TraceFormatError(InvalidInputError):
    """A request trace could not be read: the message names the file, line, column and fix."""


class TraceFetchError(PdcoreError):
    """A public trace could not be downloaded: the message names the URL, what happened and the fix."""


class ProfileError(InvalidInputError):
    """A device, cloud or network profile is invalid: the message names the file, key and fix."""


class CloudError(PdcoreError):
    """The cloud stream failed; the subclass says whether anything arrived first."""


class CloudUnavailableError(CloudError):
    """The cloud could not be reached or refused the request; nothing was received."""


class CloudStreamCutError(CloudError):
    """The cloud stream broke off after some text arrived; that text is kept."""


class CloudContextError(CloudUnavailableError):
    """The server refused the request because it exceeds its context window.

    Attributes:
        context_tokens: The window the server named, or None when it did not.
    """

    def __init__(self, message: str, context_tokens: int | None) -> None:
        super().__init__(message)
        self.context_tokens = context_tokens


class DeviceFailedError(PdcoreError):
    """The device engine failed (crashed, was killed, hung or could not start); its worker is gone.

    Attributes:
        cause: What happened, in a few words (``"killed by signal 9 (SIGKILL)"``, ``"silent for 61 s"``).
    """

    def __init__(self, message: str, *, cause: str) -> None:
        super().__init__(message)
        self.cause = cause

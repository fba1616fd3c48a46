"""A progress bar over policies that run at once (`pdcore.sim.threads.on_threads`): its description names
the policies running now (``simulating pd-device, disco``), and it advances as each ends."""

from __future__ import annotations

from rich.progress import Progress, TaskID

from pdcore.policies import Policy

__all__ = ["PolicyProgress"]


class PolicyProgress:
    """One task of ``progress`` counting ``total`` policy runs; `started` and `finished` are the
    callbacks `pdcore.sim.threads.on_threads` takes.

    Args:
        progress: The bars it is shown in.
        verb: What a run does (``simulating``, ``sizing``).
        total: Runs to count.
    """

    def __init__(self, progress: Progress, verb: str, total: int) -> None:
        self.progress = progress
        self.verb = verb
        self.task: TaskID = progress.add_task(verb, total=total)
        self.running: list[str] = []

    def started(self, policy: Policy) -> None:
        """A run has started."""
        self.running.append(policy.name)
        self._show()

    def finished(self, policy: Policy) -> None:
        """A run has ended."""
        self.running.remove(policy.name)
        self._show(advance=1)

    def _show(self, advance: int = 0) -> None:
        self.progress.update(self.task, advance=advance, description=f"{self.verb} {', '.join(self.running)}")

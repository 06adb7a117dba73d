"""Background checks of a form that changes faster than they answer (the new-run dialog's pre-flight): one in
flight at a time, the latest request waiting behind it, an answer for an older request dropped. Qt-free: the
caller starts what ``start`` hands it on whatever runs its background work, and reports back with ``answered``."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class LatestOnly(Generic[T]):
    def __init__(self) -> None:
        self.latest = 0  # the number of the newest request
        self._waiting: tuple[int, T] | None = None
        self._in_flight: tuple[int, T] | None = None

    def request(self, payload: T | None) -> None:
        """A new state of the form: whatever was asked before is stale. ``None``: nothing to check (the form's
        own rules already failed), but earlier answers are stale all the same."""
        self.latest += 1
        self._waiting = None if payload is None else (self.latest, payload)

    def start(self) -> tuple[int, T] | None:
        """The request to start now (its number and payload), or None: one is in flight, or none waits."""
        if self._in_flight is not None or self._waiting is None:
            return None
        started, self._waiting = self._waiting, None
        self._in_flight = started
        return started

    def answered(self) -> tuple[T, bool]:
        """The request in flight came back: its payload, and True when it answers the newest request (apply it),
        False when the form changed meanwhile (drop it, and ``start`` the one waiting)."""
        assert self._in_flight is not None, "no request in flight"
        (number, payload), self._in_flight = self._in_flight, None
        return payload, number == self.latest

    @property
    def pending(self) -> bool:
        """Whether the newest request has not been answered yet."""
        return any(request is not None and request[0] == self.latest for request in (self._waiting, self._in_flight))

"""Every HTTP request swiftclient sends, recorded, so a test can assert what a step costs.

Why at swiftclient's module functions and not ``Connection``'s methods: a
full listing is one ``Connection.get_container`` call but a request per
page of 10 000 names, and pages are what a listing costs. Each module
function sends exactly one request (a full listing's outer call sends none
and is not recorded; its pages are).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import swiftclient.client

#: The requests blobsvc's Swift driver sends.
FUNCTIONS = ("get_container", "head_container", "put_container", "get_object", "head_object",
             "put_object", "post_object", "delete_object")
#: Any target at all, for :meth:`SentRequests.count`.
ANY = object()


@dataclass(frozen=True)
class Sent:
    """One request: swiftclient's function, and the object it names or the
    prefix it lists (None: the whole container)."""

    function: str
    target: str | None


class SentRequests:
    """The requests sent since the last :meth:`clear`, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[Sent] = []
        for function in FUNCTIONS:
            real = getattr(swiftclient.client, function)
            monkeypatch.setattr(swiftclient.client, function, self._recording(function, real))

    def _recording(self, function: str, real: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(real)
        target = "prefix" if function == "get_container" else "name"

        def record(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs).arguments
            if not bound.get("full_listing"):  # a full listing's pages come back through here
                self.sent.append(Sent(function, bound.get(target)))  # list.append: thread-safe
            return real(*args, **kwargs)

        return record

    def clear(self) -> None:
        self.sent.clear()

    def count(self, function: str, target: str | None | object = ANY) -> int:
        """How many ``function`` requests (naming ``target``, if given)."""
        return sum(1 for sent in self.sent
                   if sent.function == function and target in (ANY, sent.target))

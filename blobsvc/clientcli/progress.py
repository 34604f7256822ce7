"""Progress bars for transfers: tqdm on stderr, only for a person watching.

A bar is drawn only when stderr is a terminal and ``--quiet`` is not
given: a script, a pipe or a log file gets no carriage returns mixed into
its output. Without tqdm installed the transfer simply runs unseen.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Progress(Protocol):
    def update(self, count: int) -> None: ...

    def expect(self, total: int | None) -> None:
        """The size, once an answer tells it (a bar made before knowing)."""

    def describe(self, label: str) -> None: ...

    def close(self) -> None: ...


class Silent:
    """The bar when nobody watches: counts nothing, draws nothing."""

    def update(self, count: int) -> None:
        pass

    def expect(self, total: int | None) -> None:
        pass

    def describe(self, label: str) -> None:
        pass

    def close(self) -> None:
        pass


class Bar:
    """A tqdm bar of bytes on stderr."""

    def __init__(self, bar: Any, fixed: bool) -> None:
        self._bar = bar
        self._fixed = fixed

    def update(self, count: int) -> None:
        self._bar.update(count)

    def expect(self, total: int | None) -> None:
        if not self._fixed:  # a tree's bar keeps the total of the whole tree
            self._bar.total = total
            self._bar.refresh()

    def describe(self, label: str) -> None:
        self._bar.set_description_str(label, refresh=False)

    def close(self) -> None:
        self._bar.close()


def wanted(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def bar(label: str, total: int | None, quiet: bool) -> Progress:
    """A bar for ``total`` bytes if wanted; None: told later by ``expect``,
    or never (stdin)."""
    if not wanted(quiet):
        return Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return Silent()
    return Bar(tqdm(desc=label, total=total, unit="B", unit_scale=True, unit_divisor=1024,
                    file=sys.stderr, leave=True, dynamic_ncols=True, disable=False),
               fixed=total is not None)

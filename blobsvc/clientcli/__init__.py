"""The client command line: ``blobsvc ls|stat|get|put|rm|mv|cp|cat`` against
a running service, beside the server's own ``serve`` and ``check-config``.

Each module holds one concern: :mod:`.args` the parsers, :mod:`.target`
what a path or URL names and which client reaches it, :mod:`.transfer`
streams between local files and objects, :mod:`.progress` the bars,
:mod:`.exits` the exit status of each failure, and :mod:`.commands` the
commands themselves. Only the client package is needed at run time.
"""

from __future__ import annotations

from blobsvc.clientcli.args import COMMANDS, add_client_options, add_commands
from blobsvc.clientcli.commands import run

__all__ = ["COMMANDS", "add_client_options", "add_commands", "run"]

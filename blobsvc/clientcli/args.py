"""The client commands' arguments, added to the ``blobsvc`` parser.

The connection options (``--url``, ``--token``, ``--user``, ``--quiet``)
are accepted before the command and after it; their defaults are left
unset so that one place does not overwrite what the other was given.
"""

from __future__ import annotations

import argparse

#: The client commands, as ``blobsvc COMMAND`` names them.
COMMANDS = ("ls", "stat", "get", "put", "rm", "mv", "cp", "cat")

CLIENT_EPILOG = """\
TARGET is an object path (docs/a.txt, on --url) or an object URL
(http://HOST:PORT/v1/objects/docs/a.txt).

environment: BLOBSVC_URL (default http://127.0.0.1:8080), BLOBSVC_TOKEN,
BLOBSVC_USER with BLOBSVC_PASSWORD.
exit status: 0 done, 1 not found or precondition failed, 2 usage error,
3 any other error of the service or the connection, 130 interrupted.
"""


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """Where the service is and who asks."""
    group = parser.add_argument_group("connection")
    group.add_argument("--url", default=argparse.SUPPRESS,
                       help="the service, http(s)://HOST:PORT (env BLOBSVC_URL; "
                       "default http://127.0.0.1:8080)")
    group.add_argument("--token", default=argparse.SUPPRESS,
                       help="Bearer token (env BLOBSVC_TOKEN)")
    group.add_argument("--user", default=argparse.SUPPRESS,
                       help="HTTP Basic user (env BLOBSVC_USER); the password from "
                       "BLOBSVC_PASSWORD, else asked on the terminal")
    group.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="no progress bar (there is none when stderr is not a terminal)")


def _command(commands: argparse._SubParsersAction, name: str, help_text: str
             ) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text, epilog=CLIENT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_client_options(parser)
    return parser


def _write_options(parser: argparse.ArgumentParser, *, meta: bool = True) -> None:
    """What a write may carry: metadata, stored headers, conditions."""
    if meta:
        parser.add_argument("-m", "--meta", action="append", default=[], metavar="KEY=VALUE",
                            help="user metadata (repeatable)")
        parser.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
                            help="a stored header: Content-Type, Content-Encoding, "
                            "Content-Disposition, Content-Language, Cache-Control, Expires")
        parser.add_argument("--content-type", help="the Content-Type to store")
    parser.add_argument("--if-none-match", metavar="ETAG|*",
                        help="write only if the destination is not that version "
                        "('*': only if it does not exist)")
    parser.add_argument("-n", "--no-clobber", action="store_const", const="*",
                        dest="if_none_match", help="same as --if-none-match '*'")
    parser.add_argument("--if-match", metavar="ETAG",
                        help="write only over that version of the destination")


def add_commands(commands: argparse._SubParsersAction) -> None:
    ls = _command(commands, "ls", "list a directory (the root by default)")
    ls.add_argument("-l", "--long", action="store_true", help="size, time (UTC) and ETag too")
    ls.add_argument("-r", "--recursive", action="store_true",
                    help="every object below, by full path")
    ls.add_argument("target", nargs="?", default="", metavar="TARGET")

    stat = _command(commands, "stat", "show an object's size, ETag, type, metadata and headers")
    stat.add_argument("--json", action="store_true", help="the object's info as JSON")
    stat.add_argument("target", metavar="TARGET")

    get = _command(commands, "get", "download an object (or, with -r, a directory)")
    get.add_argument("-r", "--recursive", action="store_true",
                     help="download every object below TARGET into the local directory DEST")
    get.add_argument("-c", "--continue", dest="resume", action="store_true",
                     help="resumable: keep DEST.part and DEST.part.json when stopped, "
                     "and go on from there next time if the object is unchanged")
    get.add_argument("target", metavar="TARGET")
    get.add_argument("dest", nargs="?", metavar="DEST",
                     help="local file or directory, '-' for stdout (default: the object's name)")

    put = _command(commands, "put", "upload a file, stdin ('-') or, with -r, a directory")
    put.add_argument("-r", "--recursive", action="store_true",
                     help="upload every file below the local directory SRC under TARGET")
    put.add_argument("src", metavar="SRC", help="local file or directory, '-' for stdin")
    put.add_argument("target", nargs="?", metavar="TARGET",
                     help="where to store it (default: SRC's name; ending in '/': into "
                     "that directory)")
    _write_options(put)

    rm = _command(commands, "rm", "delete objects (with -r, whole directories)")
    rm.add_argument("-r", "--recursive", action="store_true", help="everything below a directory")
    rm.add_argument("-f", "--force", action="store_true", help="say nothing of what is not there")
    rm.add_argument("targets", nargs="+", metavar="TARGET")

    for name, what in (("mv", "move (rename)"), ("cp", "copy")):
        command = _command(commands, name, f"{what} an object, server side")
        command.add_argument("src", metavar="SRC")
        command.add_argument("target", metavar="DEST")
        _write_options(command, meta=name == "cp")

    cat = _command(commands, "cat", "join CHUNKs into DEST server side, then delete the chunks")
    cat.add_argument("target", metavar="DEST")
    cat.add_argument("chunks", nargs="+", metavar="CHUNK")
    _write_options(cat)

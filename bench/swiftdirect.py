"""``python -m bench.swiftdirect VERB CONTAINER OBJECT [ARG]``: W8's ceiling.

python-swiftclient straight to Swift, the way an application that needs no
blobsvc would move the same bytes: ``put FILE`` streams the file
(put_object with the file object and its content_length), ``get SIZE``
drains get_object in 1 MiB chunks, ``prepare`` creates the container,
``clean`` deletes the object and the container. Authentication happens
before the clock starts; the transfer, connection included, is timed, as
curl times blobsvc's side. Prints one JSON line: seconds and bytes.

The Swift to talk to comes from the environment (BENCH_SWIFT_AUTH_URL,
BENCH_SWIFT_USER, BENCH_SWIFT_KEY), so the key is not in any command line.
"""

from __future__ import annotations

import json
import os
import sys
import time

from swiftclient.client import ClientException, Connection

CHUNK = 1024 * 1024


def connect() -> Connection:
    connection = Connection(authurl=os.environ["BENCH_SWIFT_AUTH_URL"],
                            user=os.environ["BENCH_SWIFT_USER"], key=os.environ["BENCH_SWIFT_KEY"],
                            auth_version="1", retries=0)
    connection.get_auth()  # untimed: blobsvc's driver holds its token already
    return connection


def put(connection: Connection, container: str, name: str, path: str) -> int:
    size = os.path.getsize(path)
    with open(path, "rb") as stream:
        connection.put_object(container, name, contents=stream, content_length=size)
    return size


def get(connection: Connection, container: str, name: str) -> int:
    _headers, body = connection.get_object(container, name, resp_chunk_size=CHUNK)
    return sum(len(chunk) for chunk in body)


def clean(connection: Connection, container: str, name: str) -> None:
    for delete in (lambda: connection.delete_object(container, name),
                   lambda: connection.delete_container(container)):
        try:
            delete()
        except ClientException as exc:
            if exc.http_status != 404:
                raise


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    verb, container, name, *rest = argv
    connection = connect()
    started = time.perf_counter()
    moved = 0
    if verb == "put":
        moved = put(connection, container, name, rest[0])
    elif verb == "get":
        moved = get(connection, container, name)
        if moved != int(rest[0]):
            print(f"swiftdirect: got {moved} of {rest[0]} bytes", file=sys.stderr)
            return 1
    elif verb == "prepare":
        connection.put_container(container)
    elif verb == "clean":
        clean(connection, container, name)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps({"seconds": time.perf_counter() - started, "bytes": moved}))
    connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Many rows in a real Swift container's listing, in seconds.

Why: a test of what a listing costs wants a container of 100 000 objects,
and PUTting them through the proxy takes many minutes. The rows are
merged straight into the container's database instead, by Swift's own
``ContainerBroker.merge_items`` (what the container server does with the
updates object servers send it), run by the Swift virtualenv's python on
the stack's one device: the listing, the object count and the container
server's answers are then Swift's own, exactly as if the objects had been
PUT. Only their data is missing (a GET of one answers 404), so use them
where the listing is what counts.

Run in the Swift virtualenv as ``python -I swift_rows.py ETC DEVICES
ACCOUNT CONTAINER`` with the rows on stdin (one JSON object a line); the
test process only calls :func:`add_rows` and never imports Swift.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable

#: Rows merged per transaction: Swift merges its pending updates in batches too.
BATCH = 10_000
#: The one device of a ``SwiftStack``.
DEVICE = "d1"
TIMEOUT = 300.0


def add_rows(stack, container: str, names: Iterable[str], size: int = 1024,
             content_type: str = "application/octet-stream") -> None:
    """Add a listed object named each of ``names`` to ``container`` (which
    must exist) of ``stack`` (a ``SwiftStack``): ``size`` bytes each, an
    etag of its own, created now."""
    try:
        from tests.swiftstack import ACCOUNT, ensure_installed
    except ImportError:  # tests/ is not a package and the repo root not on path
        from swiftstack import ACCOUNT, ensure_installed  # type: ignore[no-redef]

    created = f"{time.time():016.5f}"  # Swift's internal timestamp format
    lines = "".join(json.dumps({"name": name, "size": size, "content_type": content_type,
                                "created_at": created}) + "\n" for name in names)
    etc, devices = stack.data_dir / "etc", stack.data_dir / "node"
    subprocess.run([ensure_installed(), "-I", str(Path(__file__)), str(etc), str(devices),
                    ACCOUNT, container], input=lines.encode(), check=True,
                   capture_output=True, timeout=TIMEOUT)


# -- in the Swift virtualenv ----------------------------------------------------------


def _merge(etc: str, devices: str, account: str, container: str) -> None:
    """Merge the rows on stdin into the container's database, as its server would."""
    from hashlib import md5

    from swift.common import utils

    utils.SWIFT_CONF_FILE = os.path.join(etc, "swift.conf")
    utils.validate_hash_conf()  # the stack's salts: where the database lives
    from swift.common.ring import Ring
    from swift.container.backend import DATADIR, ContainerBroker

    part = Ring(etc, ring_name="container").get_part(account, container)
    name_hash = utils.hash_path(account, container)
    path = os.path.join(devices, DEVICE, utils.storage_directory(DATADIR, part, name_hash),
                        f"{name_hash}.db")
    if not os.path.exists(path):
        sys.exit(f"no database for {account}/{container} at {path}: create the container first")
    broker = ContainerBroker(path, account=account, container=container)
    batch: list[dict] = []
    for line in sys.stdin:
        row = json.loads(line)
        stamp = row["created_at"]
        batch.append({**row, "etag": md5(row["name"].encode()).hexdigest(), "deleted": 0,
                      "storage_policy_index": 0, "ctype_timestamp": stamp,
                      "meta_timestamp": stamp})
        if len(batch) == BATCH:
            broker.merge_items(batch)
            batch = []
    if batch:
        broker.merge_items(batch)


if __name__ == "__main__":
    _merge(*sys.argv[1:5])

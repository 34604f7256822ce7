"""``python -m blobsvc``: the same command line as the ``blobsvc`` script."""

import sys

from blobsvc.cli import main

sys.exit(main())

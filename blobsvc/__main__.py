import sys

from blobsvc.cli import main

sys.exit(main())

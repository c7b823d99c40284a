#!/usr/bin/env python3
"""Start the ClickHouse dev server from any working directory.

    python clickhouse/dev-server/chdev-server.py --path target/clickhouse --port 8123
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chdev.__main__ import main  # noqa: E402  (needs the path set above)

if __name__ == "__main__":
    sys.exit(main())

"""chdev: a ClickHouse HTTP interface over the embedded chDB engine, for development and tests.

Run `python -m chdev --path DIR` from clickhouse/dev-server, or
`python clickhouse/dev-server/chdev-server.py --path DIR` from anywhere.
"""

__version__ = "1.0.0"

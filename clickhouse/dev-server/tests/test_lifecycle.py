"""Start-up, shutdown, restart persistence and the one-server-per-directory rule."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chdev_testlib import ENTRY, ServerProcess  # noqa: E402


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.path = tempfile.mkdtemp(prefix="chdev-life-")
        self.servers = []

    def tearDown(self):
        for server in self.servers:
            server.cleanup()
        shutil.rmtree(self.path, ignore_errors=True)

    def start(self) -> ServerProcess:
        server = ServerProcess(self.path)
        self.servers.append(server)
        started = time.monotonic()
        server.start()
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/ping", timeout=10) as resp:
            self.assertEqual(resp.read(), b"Ok.\n")
        self.assertLess(time.monotonic() - started, 10.0, "start-up took far longer than expected")
        return server

    def fill(self, server: ServerProcess) -> None:
        client = server.client()
        client.ok("CREATE DATABASE life")
        client.ok("CREATE TABLE life.t (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
        client.ok("INSERT INTO life.t SELECT number, toString(number) FROM numbers(1000)")
        client.ok("CREATE VIEW life.v AS SELECT count() AS c FROM life.t")
        # The last row goes in right before the process dies.
        client.request("POST", {"query": "INSERT INTO life.t FORMAT TSV"}, b"1000000\tlast\n")
        client.close()

    def check(self, server: ServerProcess) -> None:
        client = server.client()
        self.assertEqual(client.scalar("SELECT count(), max(id) FROM life.t"), "1001\t1000000")
        self.assertEqual(client.scalar("SELECT s FROM life.t WHERE id = 1000000"), "last")
        self.assertEqual(client.scalar("SELECT c FROM life.v"), "1001")
        client.close()

    def test_restart_after_kill_9(self):
        server = self.start()
        self.fill(server)
        server.proc.kill()
        server.wait()
        self.check(self.start())

    def test_restart_after_sigterm(self):
        server = self.start()
        self.fill(server)
        server.signal(signal.SIGTERM)
        self.assertEqual(server.wait(), 0, server.stderr())
        self.assertFalse(os.path.exists(server.port_file), "the port file outlived the server")
        self.assertIn("stopped", server.stderr())
        self.check(self.start())

    def test_sigint_exits_cleanly(self):
        server = self.start()
        server.signal(signal.SIGINT)
        self.assertEqual(server.wait(), 0, server.stderr())

    def test_second_instance_on_the_same_directory_fails(self):
        first = self.start()
        second = subprocess.run(
            [sys.executable, ENTRY, "--path", self.path, "--port", "0"],
            capture_output=True, text=True, timeout=60)
        self.assertNotEqual(second.returncode, 0)
        self.assertIn(f"the data directory {os.path.realpath(self.path)} is in use by another process",
                      second.stderr.replace(self.path, os.path.realpath(self.path)))
        self.assertNotIn("Traceback", second.stderr)
        # The first one is unaffected.
        client = first.client()
        self.assertEqual(client.scalar("SELECT 1"), "1")
        client.close()

    def test_startup_log_line(self):
        server = self.start()
        deadline = time.monotonic() + 5
        while "listening on" not in server.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        line = server.stderr()
        self.assertIn("ClickHouse 26.9.2.1", line)
        self.assertIn(os.path.abspath(self.path), line)

    def test_bad_arguments(self):
        result = subprocess.run([sys.executable, ENTRY, "--port", "1"], capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--path", result.stderr)
        # The package form works from its own directory.
        result = subprocess.run([sys.executable, "-m", "chdev", "--help"], capture_output=True,
                                text=True, timeout=60, cwd=os.path.dirname(ENTRY))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("--port-file", result.stdout)


if __name__ == "__main__":
    unittest.main()

"""`wsrelay --check-config` and startup refuse the same file, with the same error: the rules across
keys live in conf/ (docs/config.md, "Rules across keys"), not in the server."""

import os
import subprocess
import unittest

from relay_harness import STOP_TIMEOUT, binary

SOURCE_DIR = os.environ.get("WSRELAY_SOURCE_DIR",
                            os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(SOURCE_DIR, "tests/unit/fixtures/config")
FAILING = sorted(os.path.join(FIXTURES, name) for name in os.listdir(FIXTURES)
                 if name.startswith("fail-") and name.endswith(".yaml"))
SAMPLE = os.path.join(SOURCE_DIR, "conf/wsrelay.sample.yaml")


def run(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSRELAY_")}
    return subprocess.run([binary(), *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=STOP_TIMEOUT)


def expected_error(path):
    with open(path) as f:
        for line in f:
            if line.startswith("# expect-error: "):
                return path + line[len("# expect-error: "):].rstrip("\n")
    raise AssertionError(f"{path} has no expect-error line")


class ConfigCheckTest(unittest.TestCase):
    def test_check_config_and_startup_refuse_the_same_files(self):
        self.assertGreater(len(FAILING), 1)
        for path in FAILING:
            with self.subTest(sample=os.path.basename(path)):
                expected = expected_error(path)
                checked = run("--check-config", path)
                self.assertEqual(1, checked.returncode, checked.stderr)
                lines = checked.stderr.splitlines()
                self.assertEqual(1, len(lines), checked.stderr)
                self.assertTrue(lines[0].startswith(expected), lines[0])

                started = run("--config", path)
                self.assertEqual(1, started.returncode, started.stderr)
                self.assertEqual(checked.stderr, started.stderr)

    def test_the_sample_passes(self):
        checked = run("--check-config", SAMPLE)
        self.assertEqual(0, checked.returncode, checked.stderr)


if __name__ == "__main__":
    unittest.main()

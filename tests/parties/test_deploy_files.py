"""deploy/: the compose file and the Dockerfile are well-formed and fit what `pooled init` writes.

No Docker engine runs here, so these tests check what can be checked without one: the
compose file parses; every service runs `pooled <subcommand> --config FILE`; the files it
mounts are exactly the ones `write_consortium_configs` and `create_consortium` produce;
inside the container every path a configuration names (certificates, data, audit log)
falls under a mount; each member gets only its own key and data; and the image's command
exists as a console script.
"""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from parties.certs import create_consortium
from parties.commands.init_files import compose_hosts, write_consortium_configs
from parties.config import load_analyst, load_dealer, load_node

yaml = pytest.importorskip("yaml")  # the `test` extra installs pyyaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SUBCOMMANDS = ("node", "dealer", "query")
HOSPITALS = ["hospital-a", "hospital-b", "hospital-c"]
ANALYST = "alice"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict)
    return doc


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/consortium as the deployment docs make it (compose service names as hosts)."""
    out = tmp_path_factory.mktemp("deploy") / "consortium"
    certs = create_consortium(out / "certs", HOSPITALS, dealer=True, analysts=[ANALYST])
    write_consortium_configs(out, HOSPITALS, [ANALYST], certs, hosts=compose_hosts(HOSPITALS), listen_host="0.0.0.0")
    return out


def _argv(service: dict[str, Any]) -> list[str]:
    argv = []
    for key in ("entrypoint", "command"):
        value = service.get(key, [])
        assert isinstance(value, list), f"{key} must be in exec form (a list), got {value!r}"
        argv += value
    return argv


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Container path -> (host source, read-only)."""
    mounts = {}
    for spec in service.get("volumes", []):
        parts = spec.split(":")
        source, target, mode = parts[0], parts[1], parts[2] if len(parts) > 2 else "rw"
        mounts[target] = (source, mode == "ro")
    return mounts


def _config_path(service: dict[str, Any]) -> str:
    argv = _argv(service)
    return argv[argv.index("--config") + 1]


def _role(service: dict[str, Any]) -> str:
    return _argv(service)[1]


def test_three_hospitals_and_a_dealer_from_one_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    running = {name for name, s in services.items() if not s.get("profiles")}
    assert running == {"dealer", *HOSPITALS}
    assert {s["image"] for s in services.values()} == {"pooled:latest"}
    for s in services.values():
        assert s["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert (DEPLOY / s["build"]["context"] / s["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_every_service_runs_a_known_pooled_subcommand_with_a_mounted_config(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        argv = _argv(service)
        assert argv[0] == "pooled" and argv[1] in SUBCOMMANDS, (name, argv)
        assert argv[2:4] == ["--config", _config_path(service)]
        source, read_only = _mounts(service)[_config_path(service)]
        assert read_only and PurePosixPath(source).name == PurePosixPath(_config_path(service)).name


def test_mounted_files_are_what_pooled_init_writes(compose: dict[str, Any], consortium: Path) -> None:
    for name, service in compose["services"].items():
        for source, _ in _mounts(service).values():
            if source.startswith("./consortium/"):
                assert (consortium.parent / source).exists(), f"{name} mounts {source}, which init does not write"
            else:
                assert re.fullmatch(r"audit-[a-z0-9-]+", source), f"{name}: unexpected mount {source}"


def _loaded(service: dict[str, Any], consortium: Path) -> Any:
    local = consortium / PurePosixPath(_config_path(service)).name
    load = {"node": load_node, "dealer": load_dealer, "query": load_analyst}[_role(service)]
    return load(local, check_files=False)


def _in_container(path: Path, consortium: Path, config: str) -> PurePosixPath:
    return PurePosixPath(config).parent / path.relative_to(consortium).as_posix()


def _host_side(path: PurePosixPath, mounts: dict[str, tuple[str, bool]]) -> tuple[str, bool] | None:
    """Where a container path comes from: (host source joined with the rest of the path, read-only)."""
    for target, (source, read_only) in mounts.items():
        if path == PurePosixPath(target) or PurePosixPath(target) in path.parents:
            return str(PurePosixPath(source) / path.relative_to(target)), read_only
    return None


def test_inside_each_container_the_config_finds_its_files(compose: dict[str, Any], consortium: Path) -> None:
    for name, service in compose["services"].items():
        settings, mounts = _loaded(service, consortium), _mounts(service)
        config = _config_path(service)
        needed = [settings.tls.ca, settings.tls.cert, settings.tls.key]
        if _role(service) == "node":
            assert settings.name == name  # the service is named after the member: its address resolves
            needed.append(settings.data.path)
            audit = _host_side(_in_container(settings.audit, consortium, config), mounts)
            assert audit is not None and audit[0].startswith("audit-") and not audit[1], f"{name}: audit volume"
        for path in needed:
            inside = _in_container(path, consortium, config)
            host = _host_side(inside, mounts)
            assert host is not None, f"{name}: {inside} is not mounted"
            assert host[1], f"{name}: {inside} should be read-only"
            assert (consortium.parent / host[0]).resolve() == path, f"{name}: {inside} comes from {host[0]}"


def test_addresses_resolve_to_compose_services(compose: dict[str, Any], consortium: Path) -> None:
    names = set(compose["services"])
    for service in compose["services"].values():
        settings = _loaded(service, consortium)
        addresses = dict(getattr(settings, "peers", None) or getattr(settings, "parties", {}))
        if _role(service) == "node":
            addresses["dealer"] = settings.dealer
            assert settings.listen.startswith("0.0.0.0:")
        for address in addresses.values():
            assert address.rsplit(":", 1)[0] in names, address


def test_each_member_gets_only_its_own_key_and_data(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        sources = [source for source, _ in _mounts(service).values()]
        assert not any(s.endswith("ca.key") for s in sources), f"{name} must never see the CA key"
        keys = [s for s in sources if s.endswith(".key")]
        member = {"node": f"party-{name}", "dealer": "dealer", "query": f"analyst-{ANALYST}"}[_role(service)]
        assert keys == [f"./consortium/certs/{member}.key"], (name, keys)
        data = [s for s in sources if "/data/" in s]
        assert data == ([f"./consortium/data/{name}"] if _role(service) == "node" else []), (name, data)
    audit = [_mounts(compose["services"][h])["/srv/pooled/audit"][0] for h in HOSPITALS]
    assert len(set(audit)) == 3 and set(audit) <= set(compose["volumes"])


def _dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_installs_the_package_and_runs_pooled() -> None:
    steps = _dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    copied = [args.split()[0] for op, args in steps if op == "COPY"]
    assert all((ROOT / c).exists() for c in copied) and "deploy" not in copied  # never the consortium's keys
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert {p.rstrip("*") for p in packages["include"]} <= set(copied)
    assert any(op == "RUN" and "pip install ." in args for op, args in steps)
    commands = [args for op, args in steps if op in ("CMD", "ENTRYPOINT")]
    assert commands, "the image needs a CMD or ENTRYPOINT"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for args in commands:
        argv = json.loads(args)  # exec form
        assert argv[0] in scripts, f"{argv[0]} is not a console script of this package"
    module, func = scripts["pooled"].split(":")
    assert callable(getattr(__import__(module, fromlist=[func]), func))


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    from parties.cli import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("service", ["dealer", *HOSPITALS, "analyst"])
def test_the_cli_accepts_each_service_command(compose: dict[str, Any], service: str) -> None:
    argv = _argv(compose["services"][service])
    parser = _subparsers().get(argv[1])
    if parser is None or not any("--config" in a.option_strings for a in parser._actions):
        pytest.skip(f"`pooled {argv[1]} --config` is not wired into the CLI yet")
    from parties.cli import build_parser

    args = build_parser().parse_args(argv[1:])
    assert args.command == argv[1]

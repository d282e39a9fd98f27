"""Every command in docker/compose.*.yaml parses with the installed fedsim, flwr and ray CLIs.

Images cannot be built here (no image registry), so the check is that each service's
command is accepted by the real argument parser of the program it names (no deprecated
flags), and that the images are the one fedsim Dockerfile.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import warnings

import click
import pytest
import typer
import yaml

from tests.helpers import REPO

DOCKER = REPO / "docker"
COMPOSE_FILES = sorted(DOCKER.glob("compose.*.yaml"))


def _argparse_parser(program: str) -> argparse.ArgumentParser:
    if program == "flower-superlink":
        from flwr.superlink.cli.flower_superlink import _parse_args_run_superlink

        return _parse_args_run_superlink()
    from flwr.supernode.cli.flower_supernode import _parse_args_run_supernode

    return _parse_args_run_supernode()


def _check_argparse(program: str, args: list[str]) -> None:
    parser = _argparse_parser(program)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            parser.parse_args(args)
        except SystemExit as exc:
            pytest.fail(f"{program} {' '.join(args)}: {stderr.getvalue().strip() or exc}")
    for token in args:
        action = parser._option_string_actions.get(token.split("=", 1)[0])  # noqa: SLF001
        if action is not None and "deprecated" in (action.help or "").lower():
            pytest.fail(f"{program}: {token} is deprecated")


def _click_command(program: str) -> click.Command:
    if program == "fedsim":
        from fedsim.cli import app

        return typer.main.get_command(app)
    if program == "flwr":
        from flwr.cli.app import app

        return typer.main.get_command(app)
    from ray.scripts.scripts import cli

    return cli


def _check_click(command: click.Command, name: str, args: list[str]) -> None:
    """Parse ``args`` down the group tree without invoking anything."""
    try:
        ctx = command.make_context(name, list(args))
    except click.exceptions.Exit:
        return
    except click.UsageError as exc:
        pytest.fail(f"{name} {' '.join(args)}: {exc.format_message()}")
    if isinstance(command, click.Group):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*ctx.protected_args, *ctx.args]
        assert rest, f"{name}: no sub-command given"
        sub_name, sub, sub_args = command.resolve_command(ctx, rest)
        assert sub is not None, f"{name}: unknown sub-command {rest[0]}"
        _check_click(sub, f"{name} {sub_name}", sub_args)


def _check_fedsim_config(args: list[str]) -> None:
    """``fedsim run CONFIG --set ...`` and ``fedsim flower deploy CONFIG ...``: the config and overrides validate."""
    from fedsim.errors import FedsimError
    from fedsim.experiment import resolve_config

    rest = args[2:] if args[:2] == ["flower", "deploy"] else args[1:] if args[:1] == ["run"] else None
    if rest is None:
        return
    overrides = [rest[i + 1] for i, token in enumerate(rest) if token == "--set"]
    try:
        resolve_config(REPO / rest[0], overrides)  # the image's working directory is the repository root
    except FedsimError as exc:
        pytest.fail(f"fedsim {' '.join(args)}: {exc}")


def check_command(argv: list[str]) -> None:
    program, args = argv[0], argv[1:]
    if program in ("flower-superlink", "flower-supernode"):
        _check_argparse(program, args)
    elif program in ("fedsim", "flwr", "ray"):
        _check_click(_click_command(program), program, args)
        if program == "fedsim":
            _check_fedsim_config(args)
    else:
        pytest.fail(f"{program} is neither a fedsim, flower nor ray command")


def _services() -> list[tuple[str, str, dict]]:
    return [
        (path.name, name, service)
        for path in COMPOSE_FILES
        for name, service in yaml.safe_load(path.read_text())["services"].items()
    ]


def test_compose_files_exist() -> None:
    assert {p.name for p in COMPOSE_FILES} == {"compose.flower.yaml", "compose.ray.yaml"}


@pytest.mark.parametrize(("file", "name", "service"), _services(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_service_runs_a_valid_command_of_the_fedsim_image(file: str, name: str, service: dict) -> None:
    assert service["image"] == "fedsim:latest"
    assert service["build"]["dockerfile"] == "docker/Dockerfile"
    assert isinstance(service["command"], list), f"{file}:{name}: command must be an exec-form list"
    check_command([str(t) for t in service["command"]])


def test_the_checker_rejects_what_the_clis_reject() -> None:
    for bad in (
        ["flower-supernode", "--insecure", "--clientappio-api-address", "127.0.0.1:9094"],
        ["flower-superlink", "--insecure", "--fleet-api-address", "0.0.0.0:9092"],
        ["flwr", "run", ".", "local", "--no-such-flag"],
        ["ray", "start", "--hed"],
        ["fedsim", "run", "configs/quickstart.yaml", "--set", "runtime.kind=warp"],
        ["fedsim", "flower", "deploy", "configs/quickstart.yaml", "--supernode", "2"],
    ):
        with pytest.raises(pytest.fail.Exception):
            check_command(bad)


def test_dockerfile_pins_torch_as_the_readme_does() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert "pip install torch==2.13.0" in text
    assert text.index("torch==2.13.0") < text.index('pip install ".[flower,ray]"')

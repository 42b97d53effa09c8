"""`cases --help` and every sub-command's `--help`: each sub-command has a summary, each option
a help line (an action's come from its command class's field descriptions); `cases --version`
prints the engine's and the Temporal SDK's versions; `cases peers` and `cases councils` verbs
take only their own options."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from importlib import metadata

import pytest

from cli.actions import ACTIONS
from cli.main import build_parser
from tests.support import run_cli


def _parsers(parser: argparse.ArgumentParser, path: str = "cases"
             ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the tree, each once (an alias is the same parser), with its command line."""
    seen: set[int] = set()
    stack = [(path, parser)]
    while stack:
        where, current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield where, current
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack += [(f"{where} {name}", sub) for name, sub in action.choices.items()]


def _sub_commands(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [choice for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
            for choice in action._get_subactions()]


def test_every_sub_command_in_cases_help_has_a_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli(["--help"]) == 0
    shown = capsys.readouterr().out
    section = shown.split("positional arguments:\n  COMMAND\n")[1].split("\noptions:")[0]
    listed: dict[str, str] = {}
    name = ""
    for line in section.splitlines():
        entry = re.match(r"^    (\S+)(?:\s+(.*))?$", line)
        if entry:
            name = entry.group(1)
            listed[name] = entry.group(2) or ""
        elif line.strip():
            listed[name] += " " + line.strip()
    commands = {a.dest for a in _sub_commands(build_parser())}
    assert set(listed) == commands
    assert set(ACTIONS) <= set(listed)
    unsummarised = sorted(n for n, summary in listed.items() if not summary.strip())
    assert not unsummarised, f"no summary in `cases --help`: {unsummarised}"


def test_every_sub_command_at_every_level_has_a_summary() -> None:
    missing = [f"{where} {choice.dest}" for where, parser in _parsers(build_parser())
               for choice in _sub_commands(parser) if not (choice.help or "").strip()]
    assert not missing, f"sub-commands without a summary: {missing}"


def test_every_option_of_every_parser_has_a_help_line() -> None:
    missing = [f"{where}: {'/'.join(action.option_strings) or action.dest}"
               for where, parser in _parsers(build_parser())
               for action in parser._actions
               if not isinstance(action, argparse._SubParsersAction)
               and action.help != argparse.SUPPRESS and not (action.help or "").strip()]
    assert not missing, f"options without a help line: {missing}"


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_an_actions_options_say_what_their_command_fields_describe(action: str) -> None:
    command_class = ACTIONS[action]
    parser = dict(_parsers(build_parser()))[f"cases {action}"]
    by_option = {o: a for a in parser._actions for o in a.option_strings}
    assert (command_class.__doc__ or "").strip()
    for name, info in command_class.model_fields.items():
        assert info.description, f"{command_class.__name__}.{name} has no description"
        option = by_option.get("--" + name.replace("_", "-"))
        if option is not None and name not in ("team", "document_sha256"):
            assert option.help == info.description


def test_version_prints_the_engines_and_the_temporal_sdks_versions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert metadata.version("improvement-cases") in out
    assert f"Temporal Python SDK {metadata.version('temporalio')}" in out


@pytest.mark.parametrize("argv", [
    ["councils", "import", "register.csv", "--json"],
    ["councils", "import", "register.csv", "--all"],
    ["councils", "import"],
    ["councils", "list"],
    ["councils", "due"],
    ["councils", "due", "--years", "3", "--json"],
    ["councils", "--json", "list"],
    ["peers", "import", "pool.csv"],
    ["peers", "import", "--demo"],
    ["peers", "import", "x.csv", "--demo"],
    ["peers", "import"],
    ["peers", "list", "--council", "E06000001", "--kind", "councillor"],
    ["peers", "list", "--pool", "1", "--json"],
    ["peers", "pools"],
    ["peers", "explain", "cpc-E06000001-2026", "--json"],
    ["peers", "explain"],
    ["peers", "erase", "P012", "--all-pools", "--reason", "Subject access request 2026-114"],
    ["peers", "erase", "P012", "--pool", "3", "--reason", "ER-2026-17"],
    ["peers", "erase", "P001", "--pool", "1", "--all-pools", "--reason", "x"],
    ["peers", "erase"],
])
def test_the_peers_and_councils_command_lines_in_use_still_parse(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    verb = next(word for word in argv[1:] if not word.startswith("-"))
    assert (args.command, args.what) == (argv[0], verb)


@pytest.mark.parametrize("argv", [
    ["councils", "list", "--years", "3"],
    ["councils", "due", "--all"],
    ["councils", "due", "register.csv"],
    ["councils", "list", "register.csv"],
    ["councils", "export"],
    ["councils"],
    ["peers", "import", "pool.csv", "--pool", "1"],
    ["peers", "list", "--demo"],
    ["peers", "list", "--reason", "x"],
    ["peers", "pools", "--council", "E06000001"],
    ["peers", "explain", "cpc-E06000001-2026", "--all-pools"],
    ["peers", "erase", "P012", "--kind", "councillor"],
    ["peers", "list", "P012"],
    ["peers"],
])
def test_an_option_given_to_the_wrong_verb_is_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli(argv) == 2
    assert "error:" in capsys.readouterr().err

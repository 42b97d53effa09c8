"""`cases setup`: prepare a Temporal namespace the engine did not start (its search attributes).

Run once per namespace, by an operator, against any server: a plain `temporal server start-dev`,
a self-hosted cluster. Safe to run again. On Temporal Cloud it says what to add by hand.
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.output import emit


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    sub.add_parser(
        "setup", parents=[common],
        help="register the search attributes cases need on the Temporal namespace "
             "(TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE); safe to run again")


async def run_setup(args: argparse.Namespace) -> int:
    from runtime.temporal import connect, connect_options  # Temporal's SDK: only here

    address = str(connect_options().get("target_host"))
    client = await connect(signing=False)
    from application.setup import register_search_attributes  # Temporal's SDK: only here

    done = await register_search_attributes(client)
    data = {"address": address, "namespace": done.namespace, "added": done.added,
            "already_there": done.present}
    if done.added:
        said = (f"namespace {done.namespace} at {address}: registered "
                f"{', '.join(done.added)}"
                + (f" ({', '.join(done.present)} were there)" if done.present else "")
                + "; workers can start")
    else:
        said = (f"namespace {done.namespace} at {address}: the search attributes were all "
                "there already; nothing changed")
    emit(args, data, said)
    return 0

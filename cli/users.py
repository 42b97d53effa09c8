"""`cases users …` (the operator, on the server) and `cases login/logout/whoami` (anyone)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from application.users import UserRefused, add_user, revoke, set_password, users
from cli import render
from cli.actions import BadInput
from cli.api_client import ApiClient, api_url, forget_credentials, save_credentials
from cli.output import emit
from domain.actors import PERSON_ROLES, Role
from eventstore import EventStore


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    users_parser = sub.add_parser("users", parents=[common],
                                  help="manage who may sign in, and as what (operators)")
    verbs = users_parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    add = verbs.add_parser("add", parents=[common],
                           help="create a user and print their API token once")
    add.add_argument("name", help="the user's name (no spaces or colons), e.g. siân.jones")
    add.add_argument("--role", required=True, choices=[r.value for r in PERSON_ROLES],
                     help="what they may do (see docs/access.md)")
    add.add_argument("--council", metavar="GSS", help="a council user's council, e.g. E09000008")
    add.add_argument("--password-stdin", action="store_true",
                     help="also give them a local account: read its password from stdin")
    verbs.add_parser("list", parents=[common], help="every user, role, council and state")
    revoke_parser = verbs.add_parser("revoke", parents=[common],
                                     help="revoke a user and every token of theirs")
    revoke_parser.add_argument("name", help="the user's name")
    password = verbs.add_parser("set-password", parents=[common],
                                help="set a user's local password, read from stdin")
    password.add_argument("name", help="the user's name")

    login = sub.add_parser("login", parents=[common],
                           help="sign in to the API and keep a token for later commands")
    login.add_argument("name", nargs="?", help="your user name (asks for your password)")
    login.add_argument("--password-stdin", action="store_true",
                       help="read the password from stdin instead of asking")
    login.add_argument("--token-stdin", action="store_true",
                       help="keep an API token an operator gave you, read from stdin")
    sub.add_parser("logout", parents=[common], help="forget the kept token")
    sub.add_parser("whoami", parents=[common], help="who the API says you are")


def _read_secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(prompt)


def dispatch_users(args: argparse.Namespace, store: EventStore) -> int:
    """Run on the server as its operator: straight to the database, never through the API."""
    try:
        if args.verb == "add":
            password = _read_secret("password: ", True) if args.password_stdin else None
            token = add_user(store, args.name, Role(args.role), args.council, password)
            council = f" of {args.council}" if args.council else ""
            emit(args, {"name": args.name, "role": args.role, "council": args.council,
                        "token": token},
                 f"user {args.name} ({args.role}{council}) created. Their API token, shown "
                 f"this once:\n{token}")
        elif args.verb == "list":
            rows = [{"name": u.name, "role": u.role, "council": u.council or "",
                     "state": "revoked" if u.revoked else "active",
                     "tokens": str(u.live_tokens), "password": "yes" if u.has_password else "",
                     "created": f"{u.created_at:%Y-%m-%d %H:%M}"} for u in users(store)]
            emit(args, rows, render.table(rows, ["name", "role", "council", "state", "tokens",
                                                 "password", "created"]))
        elif args.verb == "revoke":
            revoke(store, args.name)
            emit(args, {"name": args.name, "revoked": True},
                 f"user {args.name} revoked: their tokens and sessions are refused from now on")
        else:
            set_password(store, args.name, _read_secret("password: ", True))
            emit(args, {"name": args.name, "password_set": True},
                 f"user {args.name}: password set")
    except UserRefused as refused:
        raise BadInput(f"users {args.verb}: {refused}; nothing was changed") from None
    return 0


def dispatch_session(args: argparse.Namespace) -> int:
    if args.command == "logout":
        forgot = forget_credentials()
        emit(args, {"signed_out": forgot}, "signed out" if forgot else "was not signed in")
        return 0
    if args.command == "whoami":
        me = ApiClient().whoami()
        emit(args, me, f"{me['name']}: {me['role']}, acting as {me['actor']} "
                       f"(signed in by {me['signed_in_by']})")
        return 0
    url = api_url()
    if args.token_stdin:
        token = _read_secret("", True).strip()
        me = ApiClient(url, token).whoami()
    else:
        if not args.name:
            raise BadInput("login: give your user name, or --token-stdin with an API token")
        password = _read_secret(f"password for {args.name}: ", args.password_stdin)
        issued = ApiClient(url, token="").new_token(args.name, password, "cases login")
        token = issued["token"]
        me = ApiClient(url, token).whoami()
    path = save_credentials(url, me["name"], token)
    emit(args, {"name": me["name"], "role": me["role"], "actor": me["actor"],
                "credentials": str(path)},
         f"signed in as {me['name']} ({me['role']}); token kept in {path}")
    return 0

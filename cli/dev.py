"""`cases dev`: the dev server, a worker and the API in one process tree, with demo users,
and with `--mail-sink` a local SMTP server that keeps what the engine mails (`cases dev
mail` lists it); Ctrl-C stops them cleanly. `cases serve`: the API alone, for a real
deployment.

The engine's modules are imported where they are used, so `cases dev mail` starts quickly."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from cli.actions import BadInput
from cli.output import emit, visible

if TYPE_CHECKING:
    from notices.settings import MailSettings
    from runtime.mail_sink import MailSink

log = structlog.get_logger("dev")
HOST = "127.0.0.1"
DEFAULT_DB_FILE = Path(".temporal/dev.db")
DEFAULT_MAIL_PORT = 1025
SMTP_URL_VARIABLE = "CASES_SMTP_URL"


def _stopping() -> asyncio.Event:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    return stopping


def mail_folder(db_file: Path) -> Path:
    """Where `cases dev --mail-sink` keeps mail: beside the dev server's own state, so one
    `--db-file` names both and clearing that folder clears both."""
    return db_file.parent / "mail"


def mail_port(args: argparse.Namespace) -> int | None:
    """The mail sink's port with --mail-sink, else None: --mail-port alone is refused rather
    than silently ignored."""
    if not args.mail_sink:
        if args.mail_port is not None:
            raise BadInput("--mail-port is the mail sink's port: add --mail-sink")
        return None
    port: int = DEFAULT_MAIL_PORT if args.mail_port is None else args.mail_port
    if not 1 <= port <= 65535:
        raise BadInput(f"--mail-port {port}: a port is between 1 and 65535")
    return port


def _mail_port_in_use(port: int) -> RuntimeError:
    from api.server import PortInUse

    return PortInUse(f"port {port} on {HOST} is in use: stop what holds it, or choose another "
                     "with --mail-port")


def _check_mail_port_free(port: int) -> None:
    """Refuse a busy mail port before anything starts, as a busy web port is."""
    from api.server import PortInUse, check_port_free

    try:
        check_port_free(HOST, port)
    except PortInUse:
        raise _mail_port_in_use(port) from None


@contextlib.asynccontextmanager
async def _mail_sink(db_file: Path, port: int | None) -> AsyncIterator[MailSink | None]:
    """A MailSink for the block (None without --mail-sink), its URL in CASES_SMTP_URL for
    whatever is built inside the block (the worker); both undone after."""
    if port is None:
        yield None
        return
    from runtime.mail_sink import MailSink

    folder = mail_folder(db_file)
    sink = MailSink(folder, HOST, port)
    try:
        sink.start()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:  # taken since it was checked
            raise _mail_port_in_use(port) from None
        raise RuntimeError(f"the mail sink cannot start on {HOST}:{port} keeping mail in "
                           f"{visible(str(folder))}: {error.strerror or error}") from None
    previous = os.environ.get(SMTP_URL_VARIABLE)
    os.environ[SMTP_URL_VARIABLE] = sink.url
    try:
        yield sink
    finally:
        if previous is None:
            os.environ.pop(SMTP_URL_VARIABLE, None)
        else:
            os.environ[SMTP_URL_VARIABLE] = previous
        sink.stop()


async def run_dev(port: int, db_file: Path, ui: bool, web_port: int,
                  mail_port: int | None = None) -> int:
    """Everything a developer needs, in one process tree; with `mail_port`, a mail sink the
    worker sends to. Every port is checked before anything starts."""
    from api.app import Engine, create_app
    from api.server import check_port_free, serving
    from api.settings import ApiSettings
    from application.users import DEMO_PASSWORD, ensure_demo_users
    from cli.demo_contacts import ensure_demo_contacts
    from cli.dev_server import dev_server
    from domain.policies import PolicyBook
    from eventstore import open_store
    from notices.relay import relaying
    from runtime import telemetry
    from runtime.projecting import projecting
    from runtime.signing import command_key
    from worker import build_worker

    for taken, option in ((port, "--port"), (web_port, "--web-port")):
        check_port_free(HOST, taken, option)
    if mail_port is not None:
        _check_mail_port_free(mail_port)
    try:  # CASES_METRICS_PORT, CASES_TRACING: as a worker's (before the dev server connects)
        telemetry.start_telemetry(telemetry.telemetry_from_environment())
    except telemetry.TelemetryProblem as unusable:
        raise BadInput(str(unusable)) from None
    stopping = _stopping()
    store = open_store()
    store.migrate()
    demo_users = ensure_demo_users(store)
    ensure_demo_contacts(store)
    settings = ApiSettings.from_environment(command_key())
    settings = ApiSettings(session_secret=settings.session_secret, secure_cookies=False,
                           session_seconds=settings.session_seconds,
                           sign_in_rate=settings.sign_in_rate, oidc=settings.oidc)
    demo_terms = PolicyBook(demo_mode=True)
    async with (_mail_sink(db_file, mail_port) as sink,  # before the worker: it reads the URL
                dev_server(port, db_file, ui) as client,
                build_worker(client, store, policies=demo_terms),
                relaying(store, mail_settings()),
                projecting(store, demo_terms),
                telemetry.observing(store),
                serving(create_app(Engine(store=store, temporal=client), settings), HOST,
                        web_port) as api_url):
        log.info("ready: dev server, worker, API and web pages running; Ctrl-C stops them",
                 address=f"{HOST}:{port}", api=api_url, pages=f"{api_url}/",
                 ui=f"http://{HOST}:{port + 1000}" if ui else None,
                 mail=sink.url if sink else None,
                 database=store.engine.url.render_as_string(hide_password=True))
        users = ", ".join(f"{name} ({role.value}{' of ' + council if council else ''})"
                          for name, role, council in demo_users)
        smtp_export = f"  export {SMTP_URL_VARIABLE}={sink.url}\n" if sink else ""
        print(f"\nIn another terminal:\n  export TEMPORAL_ADDRESS={HOST}:{port}\n"
              f"  export CASES_API_URL={api_url}\n{smtp_export}  cases login demo-officer\n"
              f"Web pages: {api_url}/ (sign in there; the public register is "
              f"{api_url}/register)\n"
              f"API: {api_url} (OpenAPI at {api_url}/api/docs)\n"
              f"{_mail_line(sink, db_file)}"
              f"Demo users, password {DEMO_PASSWORD!r}: {users}\n", flush=True)
        await stopping.wait()
        log.info("stopping")
    store.dispose()
    log.info("stopped")
    return 0


def mail_settings() -> MailSettings | None:
    """The mail settings from the environment (the sink's, with --mail-sink); one that
    cannot be used is a refusal naming its variable."""
    from notices.settings import MailSettings, MailSettingsError

    try:
        return MailSettings.from_environment()
    except MailSettingsError as unusable:
        raise BadInput(str(unusable)) from None


def _mail_line(sink: MailSink | None, db_file: Path) -> str:
    if sink is None:
        return ""
    listing = "cases dev mail" + ("" if db_file == DEFAULT_DB_FILE else f" --db-file {db_file}")
    return visible(f"mail sink: {sink.url} (messages kept in {sink.folder}; list them with "
                   f"`{listing}`)") + "\n"


def show_mail(args: argparse.Namespace) -> int:
    """`cases dev mail`: what the mail sink kept, oldest first, and how many duplicates it
    answered without keeping; read from its folder, so the sink need not be running."""
    from cli.render import table, when
    from runtime.mail_sink import duplicates, received

    folder = mail_folder(args.db_file)
    try:
        mails = received(folder)
        duplicated = duplicates(folder)
    except OSError as error:
        raise RuntimeError(f"cannot read the mail sink's folder {visible(str(folder))}: "
                           f"{error.strerror or error}") from None
    listed = [{"message_id": m.message_id, "sender": m.sender,
               "recipients": list(m.recipients), "subject": m.subject,
               "received_at": m.received_at.isoformat(), "text": m.text} for m in mails]
    rows = [{"received": when(m.received_at), "message-id": m.message_id or "(none)",
             "to": ", ".join(m.recipients), "subject": m.subject} for m in mails]
    shown = visible(str(folder))
    summary = (f"{len(mails)} message{'' if len(mails) == 1 else 's'} kept in {shown}; "
               f"{duplicated} duplicate{'' if duplicated == 1 else 's'} (a Message-ID already "
               "kept) answered 250 and not kept again")
    text = (table(rows, ["received", "message-id", "to", "subject"]) + "\n" + summary
            if mails else f"no mail kept in {shown} (`cases dev --mail-sink` runs the sink); "
                          f"{duplicated} duplicates")
    emit(args, listed, text)
    return 0


async def run_api(host: str, port: int, processes: int = 1, *, shared: bool = False,
                  log_format: str | None = None) -> int:
    """The API alone: Temporal and the store from the environment, as the workers'. With
    `processes` above 1, that many processes of it share the port: one Python process
    draws pages on one core at most."""
    if processes > 1:
        return await _run_api_processes(host, port, processes, log_format)
    from api.app import Engine, create_app
    from api.server import check_port_free, serving
    from api.settings import ApiSettings
    from eventstore import open_store
    from runtime.signing import command_key
    from runtime.temporal import connect

    if not shared:
        check_port_free(host, port, "--port")
    stopping = _stopping()
    if shared:  # one of `--processes N`: never outlive the parent that stops the others
        watch = asyncio.create_task(_stop_when_orphaned(stopping))
    store = open_store()
    store.require_newest_schema()
    client = await connect()
    app = create_app(Engine(store=store, temporal=client),
                     ApiSettings.from_environment(command_key()))
    async with serving(app, host, port, shared=shared) as api_url:
        log.info("API ready", api=api_url, namespace=client.namespace, pid=os.getpid(),
                 database=store.engine.url.render_as_string(hide_password=True))
        await stopping.wait()
        log.info("API stopping")
    if shared:
        watch.cancel()
    store.dispose()
    return 0


async def _stop_when_orphaned(stopping: asyncio.Event) -> None:
    """Set `stopping` once this process's parent has gone (it is then re-parented): a
    `cases serve --processes` parent killed outright cannot stop its children itself."""
    parent = os.getppid()
    while not stopping.is_set():
        if os.getppid() != parent:
            log.warning("API process stopping: its parent `cases serve --processes` has gone")
            stopping.set()
            return
        await asyncio.sleep(1.0)


SHARED_PORT = "--shared-port"
"""The hidden option a `cases serve --processes N` parent starts each of its processes with."""


async def _run_api_processes(host: str, port: int, processes: int,
                             log_format: str | None) -> int:
    """`processes` copies of `cases serve` on one port (SO_REUSEPORT), started and stopped
    together: if one exits, the others are stopped and its exit status returned, so a
    supervisor restarts the service whole rather than serve on with fewer."""
    from api.server import check_port_free

    check_port_free(host, port, "--port")
    stopping = _stopping()
    command = [sys.executable, "-c", "import starter; starter.main()", "serve", "--host", host,
               "--port", str(port), SHARED_PORT,
               *(("--log-format", log_format) if log_format else ())]
    children = [await asyncio.create_subprocess_exec(*command) for _ in range(processes)]
    log.info("API processes started", processes=processes, pids=[c.pid for c in children],
             api=f"http://{host}:{port}")
    waits = [asyncio.ensure_future(c.wait()) for c in children]
    stop = asyncio.ensure_future(stopping.wait())
    await asyncio.wait([*waits, stop], return_when=asyncio.FIRST_COMPLETED)
    for child in children:
        if child.returncode is None:
            child.terminate()
    codes = await asyncio.gather(*waits)
    stop.cancel()
    failed = [code for code in codes if code not in (0, -signal.SIGTERM)]
    log.info("API processes stopped", exit_codes=codes)
    return 0 if stopping.is_set() and not failed else (failed[0] if failed else 1)

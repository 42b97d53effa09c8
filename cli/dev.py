"""`cases dev`: the dev server, a worker and the API in one process tree, with demo users;
Ctrl-C stops them cleanly. `cases serve`: the API alone, for a real deployment."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import structlog

from api.app import Engine, create_app
from api.server import check_port_free, serving
from api.settings import ApiSettings
from application.users import DEMO_PASSWORD, ensure_demo_users
from cli.dev_server import dev_server
from domain.policies import PolicyBook
from eventstore import open_store
from runtime.signing import command_key
from runtime.temporal import connect
from worker import build_worker

log = structlog.get_logger("dev")
HOST = "127.0.0.1"


def _stopping() -> asyncio.Event:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    return stopping


async def run_dev(port: int, db_file: Path, ui: bool, web_port: int) -> int:
    for taken in (port, web_port):
        check_port_free(HOST, taken)
    stopping = _stopping()
    store = open_store()
    store.migrate()
    demo_users = ensure_demo_users(store)
    settings = ApiSettings.from_environment(command_key())
    settings = ApiSettings(session_secret=settings.session_secret, secure_cookies=False,
                           session_seconds=settings.session_seconds,
                           sign_in_rate=settings.sign_in_rate, oidc=settings.oidc)
    demo_terms = PolicyBook(demo_mode=True)
    async with (dev_server(port, db_file, ui) as client,
                build_worker(client, store, policies=demo_terms),
                serving(create_app(Engine(store=store, temporal=client), settings), HOST,
                        web_port) as api_url):
        log.info("ready: dev server, worker and API running; Ctrl-C stops them",
                 address=f"{HOST}:{port}", api=api_url,
                 ui=f"http://{HOST}:{port + 1000}" if ui else None,
                 database=store.engine.url.render_as_string(hide_password=True))
        users = ", ".join(f"{name} ({role.value}{' of ' + council if council else ''})"
                          for name, role, council in demo_users)
        print(f"\nIn another terminal:\n  export TEMPORAL_ADDRESS={HOST}:{port}\n"
              f"  export CASES_API_URL={api_url}\n  cases login demo-officer\n"
              f"API: {api_url} (OpenAPI at {api_url}/api/docs)\n"
              f"Demo users, password {DEMO_PASSWORD!r}: {users}\n", flush=True)
        await stopping.wait()
        log.info("stopping")
    store.dispose()
    log.info("stopped")
    return 0


async def run_api(host: str, port: int) -> int:
    """The API alone: Temporal and the store from the environment, as the workers'."""
    check_port_free(host, port)
    stopping = _stopping()
    store = open_store()
    client = await connect()
    app = create_app(Engine(store=store, temporal=client),
                     ApiSettings.from_environment(command_key()))
    async with serving(app, host, port) as api_url:
        log.info("API ready", api=api_url, namespace=client.namespace,
                 database=store.engine.url.render_as_string(hide_password=True))
        await stopping.wait()
        log.info("API stopping")
    store.dispose()
    return 0

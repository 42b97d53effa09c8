"""The relay against a mail server that wants TLS and a login, as production ones do: STARTTLS
required before AUTH, and TLS from the first byte (smtps://), on a certificate of our own
authority (CASES_SMTP_CA_FILE). A real aiosmtpd server, not a mock."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from eventstore import EventStore
from eventstore.deliveries import deliveries_of
from notices.relay import Relay
from notices.settings import MailSettings, MailSettingsError
from tests.support import register_council
from tests.test_notices_relay import COUNCIL, contacts_for, lapse, put_contacts

USER, PASSWORD = "relay", "s3cret-relay-password"


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: its PEM, and its key's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bool]] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.received.append((str(envelope.mail_from), list(envelope.rcpt_tos),
                              session.ssl is not None))
        return "250 2.0.0 kept"


def free_port() -> int:
    """aiosmtpd's Controller checks it is up by connecting to its port: it needs a real one."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def authenticate(server: Any, session: Session, envelope: Envelope, mechanism: str,
                 data: Any) -> AuthResult:
    ok = (isinstance(data, LoginPassword) and data.login == USER.encode()
          and data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return certificate(tmp_path)


def server_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, tls_files))
    return context


@pytest.fixture
def store(sqlite_store: EventStore) -> Iterator[EventStore]:
    register_council(sqlite_store, COUNCIL)
    put_contacts(sqlite_store, contacts_for(COUNCIL))
    lapse(sqlite_store)
    yield sqlite_store


def settings(port: int, ca_file: Path | None, *, implicit_tls: bool, start_tls: bool | None,
             password: str = PASSWORD) -> MailSettings:
    return MailSettings(host="127.0.0.1", port=port, implicit_tls=implicit_tls,
                        start_tls=start_tls, sender="cases@lga.example.org", username=USER,
                        password=password, ca_file=str(ca_file) if ca_file else None)


@dataclass
class StartTlsServer:
    """A server that wants STARTTLS before a login, as production ones do, and what it got."""

    port: int
    inbox: Inbox


@pytest.fixture
def starttls_server(tls_files: tuple[Path, Path]) -> Iterator[StartTlsServer]:
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=free_port(),
                        tls_context=server_context(tls_files), require_starttls=True,
                        auth_required=True, authenticator=authenticate)
    server.start()
    try:
        yield StartTlsServer(port=server.port, inbox=inbox)
    finally:
        server.stop()


async def drain(relay: Relay) -> None:
    while await relay.deliver_due():
        pass


async def test_starttls_then_a_login_then_the_notices(
        store: EventStore, tls_files: tuple[Path, Path],
        starttls_server: StartTlsServer) -> None:
    await drain(Relay(store, settings(starttls_server.port, tls_files[0], implicit_tls=False,
                                      start_tls=True)))
    received = starttls_server.inbox.received
    assert len(received) == 3 and all(over_tls for _, _, over_tls in received)
    assert {d.status for d in deliveries_of(store, now=dt.datetime.now(dt.UTC))} == {"sent"}


async def test_a_wrong_password_is_a_wait_and_sends_nothing(
        store: EventStore, tls_files: tuple[Path, Path],
        starttls_server: StartTlsServer) -> None:
    from notices.relay import MailServerUnavailable

    relay = Relay(store, settings(starttls_server.port, tls_files[0], implicit_tls=False,
                                  start_tls=True, password="wrong"))
    with pytest.raises(MailServerUnavailable) as refused:
        await relay.deliver_due()
    assert "535" in str(refused.value) and "wrong" not in str(refused.value)
    assert starttls_server.inbox.received == []
    assert {d.status for d in deliveries_of(store, now=dt.datetime.now(dt.UTC))} == {"pending"}


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_tls_from_the_first_byte(store: EventStore,
                                       tls_files: tuple[Path, Path]) -> None:
    from aiosmtpd.smtp import SMTP as SMTPServer

    inbox = Inbox()

    class ImplicitTls(Controller):
        def factory(self) -> SMTPServer:
            return SMTPServer(self.handler, auth_required=True, authenticator=authenticate,
                              auth_require_tls=False)

    server = ImplicitTls(inbox, hostname="127.0.0.1", port=free_port(),
                         ssl_context=server_context(tls_files))
    server.start()
    try:
        port = server.port
        await drain(Relay(store, settings(port, tls_files[0], implicit_tls=True,
                                          start_tls=False)))
    finally:
        server.stop()
    assert len(inbox.received) == 3


async def test_a_certificate_nobody_vouches_for_is_refused(
        store: EventStore, starttls_server: StartTlsServer) -> None:
    """Without CASES_SMTP_CA_FILE the system's authorities decide: a self-signed server is
    not trusted with the login, and nothing is sent."""
    from notices.relay import MailServerUnavailable

    relay = Relay(store, settings(starttls_server.port, None, implicit_tls=False,
                                  start_tls=True))
    with pytest.raises(MailServerUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        await relay.deliver_due()
    assert starttls_server.inbox.received == []


def test_a_ca_file_that_is_not_there_stops_the_worker_naming_it(tmp_path: Path) -> None:
    with pytest.raises(MailSettingsError, match="CASES_SMTP_CA_FILE"):
        MailSettings.from_environment({"CASES_SMTP_URL": "smtp://mail.example.org:587",
                                       "CASES_SMTP_CA_FILE": str(tmp_path / "none.pem")})

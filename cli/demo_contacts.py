"""The demo's made-up contacts (`demo_contacts.csv`, beside this module): who `cases dev` and
`cases demo` email their notices to, at addresses of the reserved domain example.org."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cli.contacts import read_contacts
from eventstore import EventStore
from eventstore.contacts import contact_book, import_contacts

DEMO_CONTACTS = Path(__file__).with_name("demo_contacts.csv")


def ensure_demo_contacts(store: EventStore) -> int | None:
    """Import the demo contacts if no contacts were ever imported; returns the version
    imported, or None when there were contacts already (an operator's are never replaced)."""
    if contact_book(store).version is not None:
        return None
    content = DEMO_CONTACTS.read_bytes()
    return import_contacts(store, read_contacts(DEMO_CONTACTS, content, store),
                           file_sha256=hashlib.sha256(content).hexdigest(),
                           source="the demo's made-up contacts", imported_by="system:demo")

"""The command line of officers and auditors, and the client it drives cases through."""

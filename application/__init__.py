"""The application layer: what every door (the command line, the HTTP API, the web pages, the
benchmarks and the tests) asks of the engine — starting a case, acting on it, reading it,
explaining a selection, replaying an audit, scheduling checkpoints, managing users."""

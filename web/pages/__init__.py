"""One module of routes per group of pages; each exposes `router(site)`."""

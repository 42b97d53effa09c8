"""The HTTP API: the one door through which people act on cases (JSON in and out, its
OpenAPI document at /api/openapi.json). It only translates: the application layer does the
work, and the role table in domain/ decides, here and again in the workflow."""

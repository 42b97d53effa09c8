"""Pages: register (being built)."""

from __future__ import annotations

from fastapi import APIRouter

from web.site import Site


def router(site: Site) -> APIRouter:
    return APIRouter(include_in_schema=False)

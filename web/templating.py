"""The pages' Jinja2 environment: our templates, and the GOV.UK Frontend macros
(`govuk_frontend_jinja/components/…`). Autoescape is on for every template: free text from
the events (reasons, comments, summaries) is escaped wherever it is shown."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, PrefixLoader

from domain.vocabulary import Stage


def _day(value: date | datetime | None) -> str:
    """`3 March 2026`: dates as GOV.UK writes them."""
    if value is None:
        return ""
    return f"{value.day} {value.strftime('%B %Y')}"


def _moment(value: datetime | None) -> str:
    """`3 March 2026, 14:05 UTC`: recorded times."""
    if value is None:
        return ""
    return f"{_day(value)}, {value.strftime('%H:%M')} UTC"


def _stage(value: str | None) -> str:
    if not value:
        return ""
    try:
        return Stage(value).label
    except ValueError:
        return value.replace("_", " ")


def _words(value: str | None) -> str:
    """`corporate_peer_challenge` → `corporate peer challenge`."""
    return (value or "").replace("_", " ")


def environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader([
            PackageLoader("web", "templates"),
            PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
        ]),
        autoescape=True, trim_blocks=True, lstrip_blocks=True)  # the macros test for absent keys
    env.filters.update(day=_day, moment=_moment, stage=_stage, words=_words)
    return env


def render(env: Environment, template: str, **context: Any) -> str:
    return env.get_template(template).render(**context)

"""What a request carries: each command of domain/commands.py without its actor (the signed-in
user) or its case (the URL), so the API cannot drift from the commands the rules decide."""

from __future__ import annotations

import typing
from datetime import date
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from domain import commands as cmd
from domain.policies import STANDARD
from domain.vocabulary import CaseKind, GssCode, ScopeArea, ShortText, Text

NOT_FROM_THE_CALLER = {"actor", "case_id"}


class StartCase(BaseModel):
    """Open a case for a council."""

    model_config = ConfigDict(extra="forbid")

    council: GssCode = Field(description="the council's GSS code, e.g. E09000008")
    kind: CaseKind
    reason: Text = Field(description="why the council needs a peer challenge")
    scope: list[ScopeArea] = Field(default_factory=list, max_length=20)
    budget_gap_pence: int | None = Field(default=None, ge=0, le=10**15)
    deadline_policy: ShortText = Field(default=STANDARD,
                                       description="the name of one of the server's policies")
    requested_on: date | None = Field(
        default=None, description="the day the council asked for it, if not today (not in "
                                  "the future)")


def _body_for(command_class: type[cmd.Command]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (info.annotation, info) for name, info in command_class.model_fields.items()
        if name not in NOT_FROM_THE_CALLER and name != "action"}
    action = command_class.model_fields["action"]
    fields["action"] = (action.annotation, Field(description="which action (required: it "
                                                              "tells the bodies apart)"))
    return create_model(f"{command_class.__name__}Body",
                        __config__=ConfigDict(extra="forbid"),
                        __doc__=(command_class.__doc__ or "").strip() or None, **fields)


COMMAND_CLASSES: dict[str, type[cmd.Command]] = {
    typing.get_args(c.model_fields["action"].annotation)[0]: c
    for c in typing.get_args(typing.get_args(cmd.AnyCommand)[0]) if c is not cmd.RequestCase}
"""Action name → command class, e.g. `publish_report` → PublishReport."""

ACTION_BODIES: dict[str, type[BaseModel]] = {
    action: _body_for(command_class) for action, command_class in COMMAND_CLASSES.items()}

ActionBody: Any = Annotated[
    Union[tuple(ACTION_BODIES.values())],  # noqa: UP007 - a union built from a tuple
    Field(discriminator="action")]
"""Any action's body, told apart by `action` (a runtime-built type: mypy sees Any)."""


_COMMAND: TypeAdapter[cmd.AnyCommand] = TypeAdapter(cmd.AnyCommand)


def command_for(body: BaseModel, actor: str, case_id: str) -> cmd.AnyCommand:
    """The domain command a body asks for, sent as `actor` on `case_id`."""
    return _COMMAND.validate_python({**body.model_dump(), "actor": actor, "case_id": case_id})

"""The HTTP API as its users meet it: signed in by token or password, the role table
enforced on the server, refusals as 4xx with a reason, and nothing recorded for any of them.
Real Temporal (time-skipping) and a real store; the API in-process over ASGI."""

from __future__ import annotations

from api.app import CSRF_HEADER
from application.journey import demo_team
from application.users import revoke
from tests.api_support import COUNCIL, OTHER, PASSWORD, Api, scoped_case


async def test_an_officers_action_is_recorded_under_the_officers_name(api: Api) -> None:
    case_id = await scoped_case(api)
    actors = [(e.type, e.actor) for e in api.world.store.read_case(case_id)]
    assert actors == [("CaseRequested", "case_officer:siân.jones"),
                      ("CaseScoped", "case_officer:siân.jones")]


async def test_no_token_a_wrong_token_and_a_revoked_token_are_not_signed_in(api: Api) -> None:
    assert (await api.http.post("/api/cases", json={})).status_code == 401
    wrong = await api.http.get("/api/cases", headers={"Authorization": "Bearer cases_nope"})
    assert wrong.status_code == 401 and "not known" in wrong.json()["detail"]
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    assert (await api.as_("officer", "GET", "/api/whoami")).status_code == 200
    revoke(api.world.store, "siân.jones")
    refused = await api.start()
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


async def test_a_council_acts_only_as_a_council_and_only_on_its_own_cases(api: Api) -> None:
    case_id = await scoped_case(api)
    team = [p.model_dump() for p in demo_team(COUNCIL)]
    assert (await api.act("officer", case_id, action="propose_team", team=team)
            ).status_code == 200
    request_id = f"propose-team-{api.versions(case_id)}"
    assert (await api.act("adviser", case_id, action="approve", request_id=request_id)
            ).status_code == 200
    before = api.versions(case_id)

    other = await api.act("other-council", case_id, action="object_to_peer",
                          peer_id="p-officer-finance", reason="Not ours to say")
    assert other.status_code == 404
    assert (await api.as_("other-council", "GET", f"/api/cases/{case_id}")).status_code == 404

    confirm = await api.act("council", case_id, action="confirm_team")
    assert confirm.status_code == 403
    assert "only a case officer or an LGA principal adviser may" in confirm.json()["detail"]
    audit = await api.act("auditor", case_id, action="withdraw", reason="Curious")
    assert audit.status_code == 403
    assert api.versions(case_id) == before  # none of the refusals recorded anything

    objected = await api.act("council", case_id, action="object_to_peer",
                             peer_id="p-officer-finance", reason="Worked here in 2024")
    assert objected.status_code == 200, objected.text
    last = api.world.store.read_case(case_id)[-1]
    assert (last.type, last.actor) == ("PeerObjectedTo", f"council:{COUNCIL}:sam.lee")


async def test_a_withdrawal_takes_a_second_person_and_never_the_same_one(api: Api) -> None:
    case_id = await scoped_case(api)
    asked = await api.act("officer", case_id, action="withdraw", reason="Intervention instead")
    assert asked.status_code == 200
    [waiting] = asked.json()["state"]["awaiting_approval"]
    assert asked.json()["state"]["stage"] == "scoped"
    own = await api.act("officer", case_id, action="approve", request_id=waiting["request_id"])
    assert own.status_code == 409 and "your own request" in own.json()["detail"]
    approved = await api.act("adviser", case_id, action="approve",
                             request_id=waiting["request_id"])
    assert approved.status_code == 200 and approved.json()["state"]["stage"] == "withdrawn"
    types = [e.type for e in api.world.store.read_case(case_id)][-3:]
    assert types == ["ApprovalRequested", "RequestApproved", "CaseWithdrawn"]


async def test_a_case_for_a_council_not_in_the_register_is_refused(api: Api) -> None:
    refused = await api.start(council="E99999999")
    assert refused.status_code == 409
    assert "not a council this engine knows" in refused.json()["detail"]
    assert api.versions("cpc-E99999999-2026") == 0


async def test_bad_input_is_a_4xx_with_the_field_and_records_nothing(api: Api) -> None:
    case_id = await scoped_case(api)
    before = api.versions(case_id)
    unknown = await api.act("officer", case_id, action="teleport")
    assert unknown.status_code == 422 and "action" in unknown.json()["detail"]
    future = await api.act("officer", case_id, action="select_team",
                           visit_from="2020-01-01", visit_to="2020-01-02")
    assert future.status_code == 409
    sneaky = await api.act("officer", case_id, action="scope", scope=["finance"],
                           visit_mode="on_site", actor="council:E09000008:sam.lee")
    assert sneaky.status_code == 422 and "actor" in sneaky.json()["detail"]
    assert api.versions(case_id) == before


async def test_password_sign_in_gives_a_session_whose_posts_need_the_csrf_token(
        api: Api) -> None:
    wrong = await api.http.post("/api/session", json={"name": "sam.lee", "password": "nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == (
        "not signed in: wrong name or password")
    signed = await api.http.post("/api/session",
                                 json={"name": "siân.jones", "password": PASSWORD})
    assert signed.status_code == 200 and signed.json()["role"] == "case_officer"
    csrf = signed.json()["csrf_token"]
    body = {"council": OTHER, "kind": "finance", "reason": "Finance review"}
    forged = await api.http.post("/api/cases", json=body)
    assert forged.status_code == 403 and CSRF_HEADER in forged.json()["detail"]
    started = await api.http.post("/api/cases", json=body, headers={CSRF_HEADER: csrf})
    assert started.status_code == 201, started.text
    api.leave_none_running(f"improvement-case-fin-{OTHER}")


async def test_password_sign_in_is_rate_limited(api: Api) -> None:
    answers = [(await api.http.post("/api/tokens", json={"name": "sam.lee", "password": "x"})
                ).status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]


async def test_a_signed_in_user_gets_a_token_that_works_like_one_from_the_operator(
        api: Api) -> None:
    issued = await api.http.post("/api/tokens", json={"name": "sam.lee", "password": PASSWORD})
    assert issued.status_code == 201
    token = issued.json()["token"]
    me = await api.http.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["actor"] == f"council:{COUNCIL}:sam.lee"


async def test_the_openapi_document_is_served(api: Api) -> None:
    document_ = (await api.http.get("/api/openapi.json")).json()
    assert "/api/cases/{case_id}/actions" in document_["paths"]
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}


async def test_who_was_told_what_is_shown_on_the_case_to_whom_it_may_concern(api: Api) -> None:
    """A proposed team tells the council contact; the case's notices show it (and a council
    user does not see the LGA's people's addresses, nor another council's case)."""
    from domain.contacts import Contact, ContactRole
    from eventstore.contacts import import_contacts

    import_contacts(api.world.store, [
        Contact(scope=COUNCIL, role=ContactRole.COUNCIL_CONTACT, name="Contact",
                email="contact@croydon.example.org")],
        file_sha256="2" * 64, source="test", imported_by="operator:test")
    case_id = await scoped_case(api)
    proposed = await api.act("officer", case_id, action="select_team",
                             visit_from="2027-01-11", visit_to="2027-01-12")
    assert proposed.status_code in (200, 409), proposed.text
    if proposed.status_code == 409:  # no pool in this store: the officer picks the team
        asked = await api.act("officer", case_id, action="propose_team",
                              team=[p.model_dump(mode="json") for p in demo_team(COUNCIL)])
        assert asked.status_code == 200, asked.text
        request_id = asked.json()["state"]["awaiting_approval"][0]["request_id"]
        approved = await api.act("adviser", case_id, action="approve", request_id=request_id)
        assert approved.status_code == 200, approved.text

    shown = await api.as_("officer", "GET", f"/api/cases/{case_id}/notices")
    assert shown.status_code == 200, shown.text
    [notice] = shown.json()
    assert (notice["recipient"], notice["kind"], notice["status"]) == (
        "council_contact", "team_proposed", "pending")  # no relay runs in this test
    assert notice["subject"] == f"{case_id}: proposed peer team"
    own = await api.as_("council", "GET", f"/api/cases/{case_id}/notices")
    assert own.status_code == 200 and len(own.json()) == 1
    other = await api.as_("other-council", "GET", f"/api/cases/{case_id}/notices")
    assert other.status_code == 404 and "E09000008" not in other.text.replace(case_id, "")


async def test_a_query_parameter_the_address_does_not_take_is_refused_by_name(api: Api) -> None:
    """A misspelt filter must not answer as if no filter had been asked for."""
    misspelt = await api.as_("officer", "GET", "/api/cases", params={"councl": COUNCIL})
    assert misspelt.status_code == 422
    assert "'councl'" in misspelt.json()["detail"] and "council" in misspelt.json()["detail"]
    stray = await api.as_("officer", "GET", "/api/whoami", params={"as": "admin"})
    assert stray.status_code == 422 and "'as'" in stray.json()["detail"]
    assert (await api.as_("officer", "GET", "/api/whoami")).status_code == 200

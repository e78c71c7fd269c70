from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deps import ActorDep, IfMatchDep, UowDep
from app.domain import errors as de
from app.errors import problem_responses
from app.http.responses import ETAG_HEADER, set_etag
from app.http.routes import ApiRoute
from app.schemas.org_settings import SettingsPublic, SettingsUpdate
from app.services import org_settings as service

router = APIRouter(prefix="/v1", tags=["settings"], route_class=ApiRoute)


@router.get(
    "/settings", response_model=SettingsPublic, responses={200: {"headers": ETAG_HEADER}, **problem_responses()}
)
async def get_settings(actor: ActorDep, uow: UowDep, response: Response) -> SettingsPublic:
    """The organisation's settings that shape its rules."""
    org = await service.get_settings(uow, actor)
    set_etag(response, org.version)
    return SettingsPublic.model_validate(org)


@router.patch(
    "/settings",
    response_model=SettingsPublic,
    responses={
        200: {"headers": ETAG_HEADER},
        **problem_responses(412, de.Forbidden, de.OidcIssuerTaken, de.OidcIssuerNotAllowed),
    },
)
async def update_settings(
    body: SettingsUpdate, actor: ActorDep, uow: UowDep, if_match: IfMatchDep, request: Request, response: Response
) -> SettingsPublic:
    """Change the organisation's settings (admin only)."""
    org = await service.update_settings(
        uow, actor, body, if_match, allow_insecure_oidc=request.app.state.settings.oidc_allow_insecure
    )
    set_etag(response, org.version)
    return SettingsPublic.model_validate(org)

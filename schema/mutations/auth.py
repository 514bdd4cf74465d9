"""``signIn`` (SPEC §4, §5 Authentication): an OpenID Connect id token for our access token.

`app.oidc` verifies the token against the named provider's keys; `db.queries.users` finds the
account by the token's identity (creating it on the first sign-in) and audits the sign-in in the
mutation's transaction. A refused sign-in writes nothing.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from app import oidc
from app.auth import Viewer, issue_access_token
from app.errors import BadUserInput
from db.queries import users
from schema.context import Info
from schema.transactions import mutation
from schema.types.user import User

#: Id tokens are a few KB at most; anything longer is refused before it is parsed.
MAX_ID_TOKEN_BYTES = 16 * 1024


@strawberry.input(name="SignInInput")
class SignInInput:
    provider: str = strawberry.field(description="A provider name the server is configured with.")
    id_token: str = strawberry.field(description="The OpenID Connect id token the provider issued.")


@strawberry.type(name="SignInPayload")
class SignInPayload:
    access_token: str = strawberry.field(description="Send as `Authorization: Bearer <token>`.")
    expires_at: datetime
    user: User


@strawberry.type
class AuthMutations:
    @mutation(
        "Exchange an OpenID Connect id token for an access token; the first sign-in of an "
        "identity creates its account."
    )
    async def sign_in(self, info: Info, input: SignInInput) -> SignInPayload:
        if len(input.id_token.encode()) > MAX_ID_TOKEN_BYTES:
            raise BadUserInput("`idToken` is limited to 16 KB.", field="idToken")
        provider = oidc.provider_named(info.context.settings, input.provider)
        identity = await oidc.verify_id_token(provider, input.id_token.strip())
        user = await info.context.gate.run(
            users.sign_in_user,
            provider=provider.name,
            subject=identity.subject,
            email=oidc.account_email(provider, identity),
            display_name=identity.name,
            avatar_url=identity.picture,
            request_id=info.context.request_id,
        )
        access = issue_access_token(info.context.settings, user.id)
        # The rest of this operation (the payload's `user { videos … }`) reads as the new viewer.
        info.context.sign_in_as(Viewer(user_id=user.id, expires_at=access.expires_at))
        return SignInPayload(
            access_token=access.token, expires_at=access.expires_at, user=User(row=user)
        )

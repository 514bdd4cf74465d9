"""Every mutation leaves an audit record; the viewer reads their own trail and no one else's."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from schema.relay import to_global_id
from tests.factories import make_user, make_video
from tests.support.graphql import GraphQLClient

TRAIL = """{ viewer { auditEvents(first: 10) {
    totalCount edges { node { id action objectType objectId requestId diff } } } } }"""


async def test_viewer_reads_their_own_trail_newest_first(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    video = await make_video(session, user, title="Before")
    await session.commit()
    client = graphql.as_user(user.id)
    gid = to_global_id("Video", video.id)
    rename = "mutation($id: ID!) { updateVideo(input: {id: $id, title: $t}) { video { id } } }"
    rename = rename.replace("$id: ID!)", "$id: ID!, $t: String)")
    (await client.execute(rename, {"id": gid, "t": "After"})).ok()
    (
        await client.execute(
            "mutation($id: ID!) { deleteVideo(id: $id) { deletedId } }", {"id": gid}
        )
    ).ok()

    response = await client.execute(TRAIL, headers={"X-Request-ID": "trail-check-1"})
    trail = response.ok()["viewer"]["auditEvents"]
    assert trail["totalCount"] == 2
    events = [edge["node"] for edge in trail["edges"]]
    assert [event["action"] for event in events] == ["video.delete", "video.update"]
    assert events[1]["objectType"] == "Video"
    assert events[1]["objectId"] == gid
    assert events[1]["diff"]["title"] == ["Before", "After"]
    assert all(event["requestId"] for event in events)


async def test_someone_elses_trail_is_out_of_reach(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    owner, stranger = await make_user(session), await make_user(session)
    await session.commit()
    created = await graphql.as_user(owner.id).execute(
        'mutation { createVideo(input: {title: "Mine", description: "Words.", '
        "inputType: DESCRIPTION}) { video { id } } }"
    )
    created.ok()
    own = (await graphql.as_user(owner.id).execute(TRAIL)).ok()
    event_id = own["viewer"]["auditEvents"]["edges"][0]["node"]["id"]

    theirs = (await graphql.as_user(stranger.id).execute(TRAIL)).ok()
    assert theirs["viewer"]["auditEvents"]["totalCount"] == 0
    lookup = await graphql.as_user(stranger.id).execute(
        "query($id: ID!) { node(id: $id) { id } }", {"id": event_id}
    )
    assert lookup.codes == ["NOT_FOUND"]
    mine = await graphql.as_user(owner.id).execute(
        "query($id: ID!) { node(id: $id) { ... on AuditEvent { action } } }", {"id": event_id}
    )
    assert mine.ok()["node"] == {"action": "video.create"}


async def test_a_refused_mutation_leaves_no_record(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    await session.commit()
    client = graphql.as_user(user.id)
    refused = await client.execute(
        'mutation { createVideo(input: {title: "", inputType: DESCRIPTION}) { video { id } } }'
    )
    assert refused.codes == ["BAD_USER_INPUT"]
    trail = (await client.execute(TRAIL)).ok()
    assert trail["viewer"]["auditEvents"]["totalCount"] == 0

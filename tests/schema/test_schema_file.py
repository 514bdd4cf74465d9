"""The schema clients generate code from: the committed ``schema.graphql``, ``studio schema``, and
the fixed part of SPEC §4 (names and types that clients are written against)."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
    build_schema,
    is_non_null_type,
    print_ast,
)
from graphql import print_schema as print_sdl
from graphql.utilities import ast_from_value

from schema import create_schema, print_schema
from tests.support.processes import clean_env, run_studio

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run `studio schema > schema.graphql` and commit the result"

# SPEC §4, all of it: queries, mutations and subscriptions.
# Names and types are fixed; descriptions, additions and field order are the implementation's.
SPEC_SDL = """
scalar DateTime
scalar Upload

interface Node { id: ID! }

type Query {
  node(id: ID!): Node
  nodes(ids: [ID!]!): [Node]!
  viewer: User
  video(id: ID!): Video
  videos(first: Int, after: String, last: Int, before: String,
         filter: VideoFilter, orderBy: VideoOrder): VideoConnection!
  voiceProfiles(first: Int, after: String, last: Int, before: String): VoiceProfileConnection!
  generationJob(id: ID!): GenerationJob
}

type User implements Node {
  id: ID!  email: String!  displayName: String  avatarUrl: String
  createdAt: DateTime!  updatedAt: DateTime!
  videos(first: Int, after: String, last: Int, before: String,
         filter: VideoFilter, orderBy: VideoOrder): VideoConnection!
  voiceProfiles(first: Int, after: String, last: Int, before: String): VoiceProfileConnection!
}

type Video implements Node {
  id: ID!  title: String!  description: String
  inputType: VideoInputType!  sourceUrl: String
  status: VideoStatus!  progress: Int!  errorMessage: String
  audioSettings: AudioSettings!  script: Script  captionTracks: [CaptionTrack!]!
  publishedTo: [Publication!]!
  owner: User!  voiceProfile: VoiceProfile
  jobs(first: Int, after: String, last: Int, before: String): GenerationJobConnection!
  latestJob: GenerationJob
  mediaUrl: String  posterUrl: String  durationMs: Int
  createdAt: DateTime!  updatedAt: DateTime!
}

type VoiceProfile implements Node {
  id: ID!  name: String!  description: String  language: String
  sampleUrl: String  previewUrl: String
  owner: User!  createdAt: DateTime!  updatedAt: DateTime!
}

type GenerationJob implements Node {
  id: ID!  video: Video!  status: JobStatus!  stage: JobStage  progress: Int!
  attempt: Int!  error: String
  queuedAt: DateTime!  startedAt: DateTime  finishedAt: DateTime  executionTimeMs: Int
}

enum VideoStatus { DRAFT QUEUED PROCESSING READY PUBLISHED ERROR }
enum VideoInputType { URL DESCRIPTION }
enum JobStatus { QUEUED RUNNING SUCCEEDED FAILED CANCELLED }
enum JobStage { SCRIPT VOICE CAPTIONS RENDER }

type AudioSettings { speed: Float!  pitch: Float!  volume: Float!  language: String! }
type Script { segments: [ScriptSegment!]! }
type ScriptSegment { index: Int!  text: String!  startMs: Int  endMs: Int }
type CaptionTrack { language: String!  format: String!  url: String! }
type Publication { target: String!  url: String  publishedAt: DateTime! }

input VideoFilter { status: [VideoStatus!]  search: String  inputType: VideoInputType
                    createdAfter: DateTime  createdBefore: DateTime }
input VideoOrder { field: VideoOrderField! = CREATED_AT  direction: OrderDirection! = DESC }
enum VideoOrderField { CREATED_AT UPDATED_AT TITLE }
enum OrderDirection { ASC DESC }

type PageInfo { hasNextPage: Boolean!  hasPreviousPage: Boolean!
                startCursor: String  endCursor: String }
type VideoConnection { edges: [VideoEdge!]!  pageInfo: PageInfo!  totalCount: Int! }
type VideoEdge { cursor: String!  node: Video! }
type VoiceProfileConnection { edges: [VoiceProfileEdge!]!  pageInfo: PageInfo!  totalCount: Int! }
type VoiceProfileEdge { cursor: String!  node: VoiceProfile! }
type GenerationJobConnection { edges: [GenerationJobEdge!]!  pageInfo: PageInfo!  totalCount: Int! }
type GenerationJobEdge { cursor: String!  node: GenerationJob! }

# Every mutation of SPEC §4.
type Mutation {
  signIn(input: SignInInput!): SignInPayload!
  createVideo(input: CreateVideoInput!): VideoPayload!
  updateVideo(input: UpdateVideoInput!): VideoPayload!
  deleteVideo(id: ID!): DeletePayload!
  restoreVideo(id: ID!): VideoPayload!
  startGeneration(videoId: ID!): GenerationJobPayload!
  cancelGeneration(jobId: ID!): GenerationJobPayload!
  createVoiceProfile(input: CreateVoiceProfileInput!): VoiceProfilePayload!
  updateVoiceProfile(input: UpdateVoiceProfileInput!): VoiceProfilePayload!
  deleteVoiceProfile(id: ID!): DeletePayload!
  publishVideo(input: PublishVideoInput!): VideoPayload!
}

input SignInInput { provider: String!  idToken: String! }
input AudioSettingsInput { speed: Float  pitch: Float  volume: Float  language: String }
input CreateVideoInput { title: String!  description: String  inputType: VideoInputType!
                         sourceUrl: String  voiceProfileId: ID  audioSettings: AudioSettingsInput }
input UpdateVideoInput { id: ID!  title: String  description: String  sourceUrl: String
                         voiceProfileId: ID  audioSettings: AudioSettingsInput }
input CreateVoiceProfileInput { name: String!  description: String  language: String
                                sample: Upload }
input UpdateVoiceProfileInput { id: ID!  name: String  description: String  language: String }
input PublishVideoInput { videoId: ID!  target: String! = "local" }

type SignInPayload { accessToken: String!  expiresAt: DateTime!  user: User! }
type VideoPayload { video: Video! }
type VoiceProfilePayload { voiceProfile: VoiceProfile! }
type GenerationJobPayload { job: GenerationJob! }
type DeletePayload { deletedId: ID! }

type Subscription {
  jobProgress(jobId: ID!): GenerationJob!   # current state first, then every change; ends when the job ends
  videoUpdated(videoId: ID!): Video!        # current state first, then every change
  viewerJobs: GenerationJob!                # every change to any of the viewer's jobs
}
"""  # noqa: E501 (SPEC §4's Subscription, verbatim)

SPEC = build_schema(SPEC_SDL)
SPEC_TYPES = sorted(
    name
    for name, named_type in SPEC.type_map.items()
    if not name.startswith("__") and name not in ("String", "Int", "Float", "Boolean", "ID")
)


@pytest.fixture(scope="module")
def actual() -> GraphQLSchema:
    return create_schema()._schema


# --- the committed file and the command -------------------------------------------------------


def test_schema_graphql_is_up_to_date() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == print_schema(), f"schema.graphql differs from the schema: {REGENERATE}"


def test_studio_schema_prints_exactly_the_sdl() -> None:
    result = run_studio("schema", env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == print_schema()


def test_printed_sdl_builds_the_same_schema() -> None:
    """What clients generate code from is a valid schema that reads back to the same text."""
    assert print_sdl(build_schema(print_schema())).strip() == print_schema().strip()


def test_subscription_root_is_the_spec_type(actual: GraphQLSchema) -> None:
    assert actual.subscription_type is not None
    assert actual.subscription_type.name == "Subscription"


# --- SPEC §4, type by type ---------------------------------------------------------------------


@pytest.mark.parametrize("name", SPEC_TYPES)
def test_spec_type_exists_with_its_fields_and_types(actual: GraphQLSchema, name: str) -> None:
    expected = SPEC.type_map[name]
    found = actual.type_map.get(name)
    assert found is not None, f"SPEC type {name} is missing"
    assert _kind(found) == _kind(expected), f"{name} is an {_kind(found)}"
    problems = _differences(expected, found)
    assert problems == [], "\n".join(problems)


def _kind(named_type: GraphQLNamedType) -> str:
    kinds = {
        GraphQLObjectType: "object type",
        GraphQLInterfaceType: "interface",
        GraphQLInputObjectType: "input type",
        GraphQLEnumType: "enum",
        GraphQLScalarType: "scalar",
    }
    return next(kind for cls, kind in kinds.items() if isinstance(named_type, cls))


def _differences(expected: GraphQLNamedType, actual: GraphQLNamedType) -> list[str]:
    if isinstance(expected, GraphQLEnumType):
        assert isinstance(actual, GraphQLEnumType)
        return [
            f"enum value {value} is missing"
            for value in expected.values
            if value not in actual.values
        ]
    if isinstance(expected, GraphQLInputObjectType):
        assert isinstance(actual, GraphQLInputObjectType)
        return _compare_inputs(expected.name, expected.fields, actual.fields)
    if isinstance(expected, GraphQLObjectType | GraphQLInterfaceType):
        assert isinstance(actual, GraphQLObjectType | GraphQLInterfaceType)
        return _compare_object(expected, actual)
    assert isinstance(expected, GraphQLScalarType)
    return []


def _compare_object(
    expected: GraphQLObjectType | GraphQLInterfaceType,
    actual: GraphQLObjectType | GraphQLInterfaceType,
) -> list[str]:
    problems = [
        f"{expected.name} does not implement {interface.name}"
        for interface in expected.interfaces
        if interface.name not in {i.name for i in actual.interfaces}
    ]
    for field_name, field in expected.fields.items():
        where = f"{expected.name}.{field_name}"
        found: GraphQLField | None = actual.fields.get(field_name)
        if found is None:
            problems.append(f"{where} is missing")
            continue
        if str(found.type) != str(field.type):
            problems.append(f"{where} is {found.type}, SPEC says {field.type}")
        problems += _compare_inputs(where, field.args, found.args)
    return problems


def _compare_inputs(
    where: str,
    expected: dict[str, GraphQLArgument] | dict[str, GraphQLInputField],
    actual: dict[str, GraphQLArgument] | dict[str, GraphQLInputField],
) -> list[str]:
    """Arguments (or input fields): SPEC's types and defaults, and nothing new that is required."""
    problems = []
    for name, value in expected.items():
        found = actual.get(name)
        if found is None:
            problems.append(f"{where}({name}) is missing")
            continue
        if str(found.type) != str(value.type):
            problems.append(f"{where}({name}) is {found.type}, SPEC says {value.type}")
        spec_default = _spec_default(value)
        if spec_default is not None and _default(found) != spec_default:
            problems.append(f"{where}({name}) defaults to {_default(found)}, SPEC: {spec_default}")
    for name, value in actual.items():
        if name not in expected and is_non_null_type(value.type) and _default(value) is None:
            problems.append(f"{where}({name}) is new and required: existing clients would break")
    return problems


def _spec_default(value: GraphQLArgument | GraphQLInputField) -> str | None:
    node = value.ast_node
    if node is None or node.default_value is None:
        return None
    return print_ast(node.default_value)


def _default(value: GraphQLArgument | GraphQLInputField) -> str | None:
    if value.default_value is Undefined:
        return None
    printed = ast_from_value(value.default_value, value.type)
    return None if printed is None else print_ast(printed)

"""SPEC enums. The status enums are the ORM's own, so rows pass through unconverted."""

from __future__ import annotations

from enum import Enum
from typing import TypeAlias

import strawberry

from db import models

# strawberry.enum marks the ORM enum classes themselves as GraphQL enums.
for _orm_enum in (models.VideoStatus, models.VideoInputType, models.JobStatus, models.JobStage):
    strawberry.enum(_orm_enum)

VideoStatus: TypeAlias = models.VideoStatus
VideoInputType: TypeAlias = models.VideoInputType
JobStatus: TypeAlias = models.JobStatus
JobStage: TypeAlias = models.JobStage


@strawberry.enum(name="VideoOrderField")
class VideoOrderField(Enum):
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    TITLE = "TITLE"


@strawberry.enum(name="OrderDirection")
class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"

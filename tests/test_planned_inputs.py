"""Inputs built by a plan (schema/inputs.py) equal what Strawberry's own conversion builds.

The gateway's inputs use only strings and lists, so this checks the other kinds the plan hands
to Strawberry (enums, custom names, unplanned nested inputs, optional lists) on a schema of
its own: the same input classes, once planned and once not, must receive equal values.
"""

import dataclasses
import enum

import strawberry

from schema.inputs import planned_input


@strawberry.enum
class Seniority(enum.Enum):
    JUNIOR = "junior"
    SENIOR = "senior"


def input_classes(planned: bool) -> tuple[type, type]:
    decorate = planned_input if planned else (lambda cls: cls)

    @strawberry.input
    class Skill:  # never planned: goes through Strawberry's conversion from the plan
        name: str
        level: Seniority = Seniority.JUNIOR

    @decorate
    @strawberry.input
    class Tag:
        label: str
        weight: float | None = None

    @decorate
    @strawberry.input
    class Profile:
        public_id: strawberry.ID
        seniority: Seniority
        nickname: str | None  # nullable without a default: None when left out
        renamed: str = strawberry.field(name="displayName", default="")
        tags: list[Tag] | None = None
        skills: list[Skill] = strawberry.field(default_factory=list)
        remote: bool | None = None
        note: str | None = None

    return Profile, Tag


def shape(value: object) -> object:
    """A value with each input object as (class name, fields): classes differ between the two
    schemas, so instances cannot be compared directly, but their kinds must match."""
    if dataclasses.is_dataclass(value):
        fields = {f.name: shape(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return (type(value).__name__, fields)
    if isinstance(value, list):
        return [shape(item) for item in value]
    return (type(value).__name__, value)


def received(planned: bool, variables: dict[str, object]) -> tuple[str, dict[str, object]]:
    profile_class, _ = input_classes(planned)
    seen: list[object] = []

    @strawberry.type
    class Query:
        @strawberry.field
        def echo(self, profile: profile_class) -> bool:  # type: ignore[valid-type]
            seen.append(profile)
            return True

    schema = strawberry.Schema(query=Query)
    result = schema.execute_sync(
        "query($p: Profile!) { echo(profile: $p) }", variable_values={"p": variables}
    )
    assert result.errors is None, result.errors
    (profile,) = seen
    assert type(profile) is profile_class
    return shape(profile)  # type: ignore[return-value]


def test_planned_inputs_equal_strawberrys_conversion():
    full = {
        "publicId": "c-1",
        "seniority": "SENIOR",
        "displayName": "Ada",
        "tags": [{"label": "python", "weight": 0.5}, {"label": "sql"}],
        "skills": [{"name": "graphql", "level": "SENIOR"}, {"name": "rest"}],
        "remote": False,
        "note": None,
    }
    minimal = {"publicId": "c-2", "seniority": "JUNIOR"}
    for variables in (full, minimal):
        assert received(True, variables) == received(False, variables)
    name, built = received(True, full)
    assert name == "Profile"
    assert built["seniority"] == ("Seniority", Seniority.SENIOR)
    assert built["skills"][1] == (
        "Skill",
        {"name": ("str", "rest"), "level": ("Seniority", Seniority.JUNIOR)},
    )
    assert built["tags"][1] == ("Tag", {"label": ("str", "sql"), "weight": ("NoneType", None)})
    _, left_out = received(True, minimal)
    assert left_out["tags"] == ("NoneType", None) and left_out["nickname"] == ("NoneType", None)

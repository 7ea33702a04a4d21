"""The one config reader's wording: every pydantic problem names its key, the same for files, cards and requests."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from geovigie.config_file import describe_errors


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(ge=1)
    name: str


def _error(data: dict) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Table.model_validate(data)
    return caught.value


def test_every_problem_names_its_key() -> None:
    text = describe_errors(_error({"size": 0, "colour": "red"}))
    assert text == ("size: Input should be greater than or equal to 1; missing key 'name'; "
                    "unknown key 'colour' (remove it or check its spelling)")


def test_a_list_of_problems_reads_the_same_as_the_error() -> None:
    error = _error({"size": "x"})
    assert describe_errors(list(error.errors())) == describe_errors(error)


def test_no_problem_is_an_empty_text() -> None:
    assert describe_errors([]) == ""

"""The README's promises to a newcomer that are documentation only (issue 30, items 8 and "Done when"): each is a
sentence a user acts on, so losing one in an edit is a regression this test catches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
FIRST = README[: README.index("\n## Serving models")]  # the title, "Two commands" and "The first hour"


def _flat(text: str) -> str:
    """`text` with markdown emphasis removed and whitespace runs (line breaks included) as one space."""
    return re.sub(r"\s+", " ", text.replace("**", "").replace("`", ""))


@pytest.mark.parametrize(
    "promise",
    [
        "A create that names no model",  # what a bare create makes
        "The default search mode is hybrid",
        "Hits are chunks unless you ask for documents",
        "Keep the bundled model when you add another: --model bundled",
    ],
)
def test_the_first_section_answers_a_newcomers_questions(promise: str) -> None:
    assert promise in _flat(FIRST), promise


def test_the_ray_stop_warning_is_there() -> None:
    assert "ray stop stops every Ray process on the machine" in _flat(README)


def test_the_torch_build_is_not_promised_to_be_the_cpu_one() -> None:
    setup = _flat(README[: README.index("Then:")])
    assert "Which torch build that is depends on the package index pip uses" in setup
    assert "make install gets the CPU build" not in setup

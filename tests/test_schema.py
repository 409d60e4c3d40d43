import pytest

from appliance.schema import Field, list_of, one_of, positive, validate

FIELDS = {"name": Field(str), "size": Field(list, check=list_of(int, 2)),
          "mode": Field(str, required=False, check=one_of("a", "b"), default="a"),
          "count": Field(int, required=False, check=positive, default=1)}


def test_valid_object_gets_defaults():
    assert validate({"name": "x", "size": [1, 2]}, FIELDS, "m") == {
        "name": "x", "size": [1, 2], "mode": "a", "count": 1}


@pytest.mark.parametrize(("data", "message"), [
    ({"size": [1, 2]}, "m.name: required field is missing"),
    ({"name": 1, "size": [1, 2]}, "m.name: must be a string, got int"),
    ({"name": "x", "size": [1]}, r"m.size: must have 2 items \(got \[1\]\)"),
    ({"name": "x", "size": [1, "2"]}, "m.size: has an item of the wrong type"),
    ({"name": "x", "size": [1, True]}, "m.size: has an item of the wrong type"),
    ({"name": "x", "size": [1, 2], "mode": "c"}, "m.mode: must be one of a, b"),
    ({"name": "x", "size": [1, 2], "count": 0}, "m.count: must be above 0"),
    ({"name": "x", "size": [1, 2], "count": True}, "m.count: must be an integer, got True"),
    ({"name": "x", "size": [1, 2], "extra": 1}, "m.extra: unknown field"),
    ([], "m: must be an object"),
])
def test_errors_name_the_field(data, message):
    with pytest.raises(ValueError, match=message):
        validate(data, FIELDS, "m")


def test_row36_every_string_is_capped_and_one_line_unless_allowed():
    from appliance.schema import DEFAULT_MAX_LENGTH, text_problem

    fields = {"title": Field(str), "notes": Field(str, max_length=10, multiline=True)}
    with pytest.raises(ValueError, match=rf"m.title: is {DEFAULT_MAX_LENGTH + 1} characters "
                       rf"long, the limit is {DEFAULT_MAX_LENGTH}: shorten it \(got 'xxx"):
        validate({"title": "x" * (DEFAULT_MAX_LENGTH + 1), "notes": ""}, fields, "m")
    assert validate({"title": "\u00e9t\u00e9 \u2014 \u590f", "notes": "a\nb"}, fields, "m")
    assert text_problem("a\tb", 10) == ("has a newline or control character (U+0009) at "
                                        "character 2: use one line of plain text")
    assert text_problem("a\rb", 10, multiline=True).startswith("has a control character")


def test_errors_quote_long_values_short():
    from appliance.schema import SHOWN

    fields = {"mode": Field(str, check=one_of("a", "b"), max_length=10_000)}
    with pytest.raises(ValueError) as caught:
        validate({"mode": "z" * 5000}, fields, "m")
    assert len(str(caught.value)) < SHOWN + 60

import pytest

from modelport.domain.names import validate_alias, validate_model_name
from modelport.domain.refs import ModelRef, looks_like_ref, parse_ref
from modelport.errors import InvalidNameError, InvalidReferenceError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models:/churn/3", ModelRef("churn", version=3)),
        ("models:/churn@production", ModelRef("churn", alias="production")),
        ("churn/3", ModelRef("churn", version=3)),
        ("churn@champion", ModelRef("churn", alias="champion")),
        ("churn/latest", ModelRef("churn")),
        ("models:/fraud.v2_x-1/12", ModelRef("fraud.v2_x-1", version=12)),
    ],
)
def test_parse_ref_accepts_the_documented_forms(text: str, expected: ModelRef) -> None:
    assert parse_ref(text) == expected


def test_ref_prints_in_canonical_form() -> None:
    assert str(parse_ref("churn/3")) == "models:/churn/3"
    assert str(parse_ref("churn@production")) == "models:/churn@production"
    assert str(parse_ref("churn/latest")) == "models:/churn/latest"
    assert parse_ref("churn/latest").is_latest


@pytest.mark.parametrize(
    "text",
    [
        "churn",
        "churn/0",
        "churn/-1",
        "churn/3/4",
        "churn/v3",
        "churn/٣",  # a non-ASCII digit
        "../etc/3",
        "churn@",
        "@production",
        "churn@latest",
        "churn@1abc",
        "models:/",
        "a b/3",
        "churn\x00/3",
        "models:/../x/1",
        "",
    ],
)
def test_parse_ref_rejects_bad_references_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidReferenceError, match="models:/NAME/VERSION"):
        parse_ref(text)


def test_looks_like_ref_tells_refs_from_paths() -> None:
    assert looks_like_ref("churn/3")
    assert looks_like_ref("models:/anything")
    assert not looks_like_ref("/tmp/some/package")
    assert not looks_like_ref("package-dir")


@pytest.mark.parametrize("name", ["churn", "c", "Fraud-2024.v1_b", "9lives", "a" * 128])
def test_valid_model_names(name: str) -> None:
    assert validate_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "a" * 129, "../x", "a/b", "a\\b", "a..b", ".hidden", "-x", "a b", "a\nb", "a\x00", "é"],
)
def test_invalid_model_names_say_what_is_allowed(name: object) -> None:
    with pytest.raises(InvalidNameError, match="letters, digits"):
        validate_model_name(name)


def test_a_name_must_be_text() -> None:
    with pytest.raises(InvalidNameError, match="must be a string, got int"):
        validate_model_name(3)


@pytest.mark.parametrize("alias", ["champion", "canary-2", "A_b"])
def test_valid_aliases(alias: str) -> None:
    assert validate_alias(alias) == alias


@pytest.mark.parametrize("alias", ["", "2nd", "latest", "a.b", "a/b", "x" * 65])
def test_invalid_aliases(alias: str) -> None:
    with pytest.raises(InvalidNameError, match="alias"):
        validate_alias(alias)

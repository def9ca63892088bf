import json

import pytest

from mvm.canonical import canonical_bytes, canonical_json


def test_keys_sort_by_utf16_code_units_rfc8785_example():
    # RFC 8785 section 3.2.3: U+1F600 is the surrogate pair D83D DE00, so it
    # sorts before U+FB33 although its code point is larger.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    keys = list(json.loads(canonical_json(value)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_string_escapes_rfc8785_example():
    # RFC 8785 section 3.2.2.2.
    s = "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/"
    assert canonical_json(s) == '"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"'


def test_short_escapes_and_raw_unicode():
    assert canonical_json("\b\f\n\r\t\x01\x7f\u2028") == '"\\b\\f\\n\\r\\t\\u0001\x7f\u2028"'
    assert canonical_bytes({"k": "\u00e9"}) == b'{"k":"\xc3\xa9"}'


def test_structure_has_no_whitespace():
    assert canonical_json({"b": [1, True, None, {"z": False, "a": -3}], "a": ""}) == '{"a":"","b":[1,true,null,{"a":-3,"z":false}]}'


def test_refuses_what_ir_never_holds():
    with pytest.raises(TypeError):
        canonical_json({"x": 1.5})
    with pytest.raises(TypeError):
        canonical_json({1: "x"})
    with pytest.raises(ValueError):
        canonical_json("\ud800")

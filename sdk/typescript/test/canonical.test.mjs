import assert from "node:assert/strict";
import { test } from "node:test";

import { canonicalJson } from "../dist/index.js";

test("keys sort by UTF-16 code units (RFC 8785 section 3.2.3)", () => {
  const value = {
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\u{1f600}": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis",
  };
  assert.deepEqual(Object.keys(JSON.parse(canonicalJson(value))).length, 7);
  const order = [...canonicalJson(value).matchAll(/"([^"]*)":/g)].map((m) => JSON.parse(`"${m[1]}"`));
  assert.deepEqual(order, ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\u{1f600}", "\ufb33"]);
});

test("string escapes (RFC 8785 section 3.2.2.2)", () => {
  const s = "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/";
  assert.equal(canonicalJson(s), '"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"');
  assert.equal(canonicalJson("\b\f\n\r\t\x01\x7f\u2028"), '"\\b\\f\\n\\r\\t\\u0001\x7f\u2028"');
});

test("no whitespace, nested structures", () => {
  assert.equal(canonicalJson({ b: [1, true, null, { z: false, a: -3 }], a: "" }), '{"a":"","b":[1,true,null,{"a":-3,"z":false}]}');
});

test("refuses what JCS cannot encode", () => {
  assert.throws(() => canonicalJson("\ud800"), TypeError);
  assert.throws(() => canonicalJson({ x: NaN }), TypeError);
  assert.throws(() => canonicalJson({ x: undefined }), TypeError);
});

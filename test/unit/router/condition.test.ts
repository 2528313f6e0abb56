import { test } from "node:test";
import assert from "node:assert/strict";
import { jsonMsg, msg, value } from "./helpers.js";

// Each row: expression, expected value (undefined = IoT Hub's Undefined), optional message.
type Row = [string, unknown, ReturnType<typeof msg>?];

function table(name: string, rows: Row[]): void {
  for (const [expr, expected, message] of rows) {
    test(`${name}: ${expr}`, () => {
      assert.deepEqual(value(expr, message), expected);
    });
  }
}

table("literals", [
  ["true", true],
  ["false", false],
  ["TRUE", true],
  ["null", null],
  ["undefined", undefined],
  ["42", 42],
  ["0x1F", 31],
  ["0XfF", 255],
  ["1.5", 1.5],
  [".25", 0.25],
  ["1e3", 1000],
  ["2.5E-1", 0.25],
  ["'single'", "single"],
  ['"double"', "double"],
  [String.raw`'it\'s'`, "it's"],
  [String.raw`"say \"hi\""`, 'say "hi"'],
  [String.raw`'back\\slash'`, "back\\slash"],
  [String.raw`'\u00e9t\u00E9'`, "été"],
  ["'/* not a comment */'", "/* not a comment */"],
  ["1 /* a comment */ + 2", 3],
]);

table("arithmetic and unary", [
  ["1 + 2 * 3", 7],
  ["(1 + 2) * 3", 9],
  ["10 - 4 - 3", 3], // left-associative
  ["20 / 4 / 5", 1],
  ["7 % 4", 3],
  ["-3 + 5", 2],
  ["- (2 * 3)", -6],
  ["--4", 4],
  ["-2 * -3", 6],
  ["1 / 0", undefined], // infinity is Undefined
  ["1 + undefined", undefined],
  ["1 + null", undefined],
  ["-undefined", undefined],
  ["$body.n * 2", 6, jsonMsg({ n: 3 })],
  ["$body.s * 2", undefined, jsonMsg({ s: "3" })], // a string at run time: Undefined, not an error
]);

table("string concatenation", [
  ["'a' || 'b' || 'c'", "abc"],
  ["'x' || undefined", undefined],
  ["'n' || $body.s", "nv", jsonMsg({ s: "v" })],
  ["'n' || $body.n", undefined, jsonMsg({ n: 1 })],
  ["'a' || 'b' = 'ab'", true], // || binds tighter than =
]);

table("comparisons", [
  ["1 < 2", true],
  ["2 <= 2", true],
  ["3 > 2", true],
  ["2 >= 3", false],
  ["'abc' < 'abd'", true],
  ["'B' < 'a'", true], // ordinal: upper case sorts first
  ["'b' >= 'a'", true],
  ["1 < undefined", undefined],
  ["null <= null", true],
  ["null < null", false],
  ["null < 1", undefined],
  ["$body.n > 'x'", undefined, jsonMsg({ n: 1 })], // mixed types at run time
  ["1 + 1 < 3", true], // + binds tighter than <
]);

table("equality", [
  ["1 = 1", true],
  ["1 = 2", false],
  ["1 != 2", true],
  ["1 <> 1", false],
  ["'a' = 'a'", true],
  ["'a' = 'A'", false], // case-sensitive
  ["true = true", true],
  ["true != false", true],
  ["null = null", true],
  ["null != null", false],
  ["'a' = null", undefined],
  ["undefined = undefined", undefined],
  ["'a' = undefined", undefined],
  ["1 < 2 = true", true], // < binds tighter than =
  ["$body.n = '1'", undefined, jsonMsg({ n: 1 })],
]);

table("logic (three-valued)", [
  ["true AND true", true],
  ["true and false", false],
  ["false AND undefined", false],
  ["undefined AND false", false],
  ["true AND undefined", undefined],
  ["true OR false", true],
  ["false or false", false],
  ["undefined OR true", true],
  ["false OR undefined", undefined],
  ["NOT true", false],
  ["not false", true],
  ["NOT undefined", undefined],
  ["NOT null", true],
  ["null AND true", null],
  ["null OR true", true],
  ["null OR false", false],
  ["false OR true AND false", false], // AND binds tighter than OR
  ["true OR true AND false", true],
  ["NOT false AND false", false], // NOT binds tighter than AND
  ["NOT (1 = 2)", true],
  ["1 = 1 AND 2 = 2", true], // = binds tighter than AND
]);

table("coalesce", [
  ["undefined ?? 'x'", "x"],
  ["'a' ?? 'b'", "a"],
  ["null ?? 'b'", null], // null is defined
  ["$body.missing ?? 5", 5, jsonMsg({})],
  ["$body.n ?? 5", 1, jsonMsg({ n: 1 })],
  ["undefined ?? 1 = 1", true], // ?? is the loosest: undefined ?? (1 = 1)
  ["undefined ?? false OR true", true],
  ["[missing] ?? 'dflt'", "dflt"],
]);

table("application and system properties", [
  ["alert", "yes", msg({ properties: { alert: "yes" } })],
  ["alert = 'yes'", true, msg({ properties: { alert: "yes" } })],
  ["alert = 'yes'", undefined, msg()], // missing property: Undefined
  ["[alert level] = 'high'", true, msg({ properties: { "alert level": "high" } })],
  ["['and'] = 'x'", true, msg({ properties: { and: "x" } })],
  ["[\"a]b\"] = 'x'", true, msg({ properties: { "a]b": "x" } })],
  ["sensor.kind", "t", msg({ properties: { "sensor.kind": "t" } })],
  ["[constructor]", undefined], // never the prototype
  ["$connectionDeviceId", "dev1"],
  ["$connectionModuleId", undefined],
  ["$connectionModuleId", "filter", msg({ source: "dev1/filter" })],
  ["$connectionDeviceId = 'dev1'", true, msg({ source: "dev1/filter" })],
  // the sender's identity comes from the authenticated source, not from what the device claims
  ["$connectionDeviceId", "dev1", msg({ systemProperties: { connectionDeviceId: "spoof" } })],
  ["$contentType", "application/json", msg({ systemProperties: { contentType: "application/json" } })],
  ["$contentEncoding", "utf-8", msg({ systemProperties: { contentEncoding: "utf-8" } })],
  ["$messageId", "m-1", msg({ systemProperties: { messageId: "m-1" } })],
  ["$correlationId", "c-1", msg({ systemProperties: { correlationId: "c-1" } })],
  ["$userId", "u1", msg({ systemProperties: { userId: "u1" } })],
  ["$to", "/x", msg({ systemProperties: { to: "/x" } })],
  ["$outputName", "out1", msg({ systemProperties: { outputName: "out1" } })],
  ["$enqueuedTime", "2024-01-02T03:04:05.000Z"],
  ["$enqueuedTime > '2024-01-01'", true],
  ["$iothub-connection-device-id", "dev1"],
  ["$CONTENTTYPE", "text/plain", msg({ systemProperties: { contentType: "text/plain" } })],
  ["$messageSchema", "s1", msg({ systemProperties: { messageSchema: "s1" } })],
  ["$custom", "v", msg({ systemProperties: { custom: "v" } })], // other $names read systemProperties as written
  // an application property that looks like a system property does not shadow it
  ["$messageId", undefined, msg({ properties: { $messageId: "fake" } })],
  ["messageId", undefined, msg({ systemProperties: { messageId: "m" } })], // bare names are app properties
]);

table("built-in functions", [
  ["abs(-2.5)", 2.5],
  ["abs(undefined)", undefined],
  ["as_number('12.5')", 12.5],
  ["as_number(' -3 ')", -3],
  ["as_number(7)", 7],
  ["as_number('abc')", undefined],
  ["as_number('')", undefined],
  ["as_number('0x10')", undefined],
  ["as_number(true)", undefined],
  ["as_number(temp) > 30", true, msg({ properties: { temp: "31.5" } })],
  ["ceiling(1.2)", 2],
  ["ceiling(-1.2)", -1],
  ["concat('a', 'b', 'c')", "abc"],
  ["concat('a', undefined)", undefined],
  ["contains('hello', 'ell')", true],
  ["contains('hello', 'xyz')", false],
  ["contains(undefined, 'x')", undefined],
  ["ends_with('hello', 'llo')", true],
  ["ends_with('hello', 'he')", false],
  ["exp(0)", 1],
  ["exp(1000)", undefined], // overflow is Undefined
  ["floor(1.8)", 1],
  ["floor(-1.2)", -2],
  ["index_of('hello', 'l')", 2],
  ["index_of('hello', 'z')", -1],
  ["index_of(null, 'z')", undefined],
  ["is_bool(false)", true],
  ["is_bool('true')", false],
  ["is_bool(undefined)", false],
  ["is_defined(undefined)", false],
  ["is_defined(null)", true],
  ["is_defined(alert)", true, msg({ properties: { alert: "" } })],
  ["is_defined(alert)", false],
  ["is_null(null)", true],
  ["is_null(undefined)", false],
  ["is_null($body.x)", true, jsonMsg({ x: null })],
  ["is_number(1)", true],
  ["is_number('1')", false],
  ["is_number($body.n)", true, jsonMsg({ n: 2 })],
  ["is_string('s')", true],
  ["is_string(1)", false],
  ["is_string(undefined)", false],
  ["length('héllo')", 5],
  ["length(undefined)", undefined],
  ["lower('ABC')", "abc"],
  ["lower(null)", undefined],
  ["power(2, 10)", 1024],
  ["power(2, undefined)", undefined],
  ["sign(-5)", -1],
  ["sign(0)", 0],
  ["sign(3)", 1],
  ["sqrt(16)", 4],
  ["sqrt(-1)", undefined],
  ["square(3)", 9],
  ["starts_with('hello', 'he')", true],
  ["starts_with('hello', 'lo')", false],
  ["substring('hello', 1)", "ello"],
  ["substring('hello', 1, 3)", "ell"],
  ["substring('hello', 9)", undefined],
  ["substring('hello', 1, undefined)", undefined],
  ["upper('abc')", "ABC"],
  ["UPPER('abc')", "ABC"], // function names are case-insensitive
  ["upper(undefined)", undefined],
  ["length(concat(lower('AB'), upper('c'))) = 3", true],
]);

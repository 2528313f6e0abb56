import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRoute, RouteError } from "../../../core/router/index.js";

/** Parse and return the RouteError (fails the test if the route compiles). */
function fault(text: string): RouteError {
  try {
    parseRoute(text, "r1");
  } catch (err) {
    assert.ok(err instanceof RouteError, String(err));
    return err;
  }
  assert.fail(`route compiled: ${text}`);
}

// [route, code, column, a fragment of the message]
const CASES: [string, string, number, string][] = [
  ["INTO $upstream", "STRATA_ROUTE_SYNTAX", 1, "expected FROM"],
  ["SELECT a FROM /* INTO $upstream", "STRATA_ROUTE_SYNTAX", 8, "expected '*' after SELECT"],
  ["FROM INTO $upstream", "STRATA_ROUTE_SYNTAX", 6, "expected a source starting with '/'"],
  ["FROM", "STRATA_ROUTE_SYNTAX", 5, "expected a source"],
  ["FROM /msgs/* INTO $upstream", "STRATA_ROUTE_SYNTAX", 7, "expected '*', 'messages' or 'twinChangeNotifications'"],
  ["FROM /messages/devices/* INTO $upstream", "STRATA_ROUTE_SYNTAX", 16, "expected '*' or 'modules'"],
  ["FROM /messages/modules/m/inputs/* INTO $upstream", "STRATA_ROUTE_SYNTAX", 26, "expected '*' or 'outputs'"],
  ["FROM /messages/modules/m INTO $upstream", "STRATA_ROUTE_SYNTAX", 25, "expected '*' or 'outputs'"],
  ["FROM /messages/*/x INTO $upstream", "STRATA_ROUTE_SYNTAX", 17, "expected the end of the source"],
  ["FROM /* $upstream", "STRATA_ROUTE_SYNTAX", 9, "expected WHERE or INTO"],
  ["FROM /* WHERE INTO $upstream", "STRATA_ROUTE_SYNTAX", 15, "expected a condition after WHERE"],
  ["FROM /* WHERE a = 'x' b INTO $upstream", "STRATA_ROUTE_SYNTAX", 23, "expected an operator or INTO"],
  ["FROM /* WHERE a = INTO $upstream", "STRATA_ROUTE_SYNTAX", 19, "expected an operand"],
  ["FROM /* WHERE (a = 'x' INTO $upstream", "STRATA_ROUTE_SYNTAX", 24, "expected ')'"],
  ["FROM /* WHERE a = 'x INTO $upstream", "STRATA_ROUTE_SYNTAX", 19, "unterminated string"],
  ["FROM /* WHERE a = 'x\\n' INTO $upstream", "STRATA_ROUTE_SYNTAX", 21, "unknown escape"],
  ["FROM /* WHERE a # 1 INTO $upstream", "STRATA_ROUTE_SYNTAX", 17, "unexpected character '#'"],
  ["FROM /* WHERE 12ab = 1 INTO $upstream", "STRATA_ROUTE_SYNTAX", 17, "after the number"],
  ["FROM /* WHERE $body = 1 INTO $upstream", "STRATA_ROUTE_SYNTAX", 20, "expected '.' or '[' after $body"],
  ["FROM /* WHERE $body.a[x] = 1 INTO $upstream", "STRATA_ROUTE_SYNTAX", 23, "array index"],
  ["FROM /* WHERE foo(1) INTO $upstream", "STRATA_ROUTE_SYNTAX", 15, "unknown function 'foo'"],
  ["FROM /* WHERE abs(1, 2) = 1 INTO $upstream", "STRATA_ROUTE_SYNTAX", 15, "abs expects 1 argument, got 2"],
  ["FROM /* WHERE substring('a') = 'a' INTO $upstream", "STRATA_ROUTE_SYNTAX", 15, "substring expects 2 or 3 arguments, got 1"],
  ["FROM /* WHERE concat('a') = 'a' INTO $upstream", "STRATA_ROUTE_SYNTAX", 15, "concat expects at least 2 arguments"],
  ["FROM /* WHERE is_null() INTO $upstream", "STRATA_ROUTE_SYNTAX", 15, "is_null expects 1 argument, got 0"],
  ["FROM /* WHERE contains('a' 'b') INTO $upstream", "STRATA_ROUTE_SYNTAX", 28, "expected ',' or ')'"],
  ["FROM /* WHERE a = 1 AND INTO $upstream", "STRATA_ROUTE_SYNTAX", 25, "found the keyword INTO"],
  ["FROM /* INTO", "STRATA_ROUTE_SYNTAX", 13, "expected an endpoint"],
  ["FROM /* INTO $cloud", "STRATA_ROUTE_SYNTAX", 14, "unknown endpoint '$cloud'"],
  ["FROM /* INTO Endpoint(\"/modules/m/inputs/i\")", "STRATA_ROUTE_SYNTAX", 14, "unknown endpoint function"],
  ["FROM /* INTO BrokeredEndpoint(\"/modules/m/outputs/i\")", "STRATA_ROUTE_SYNTAX", 32, "expected a module input address"],
  ["FROM /* INTO BrokeredEndpoint(/modules/m/inputs/i)", "STRATA_ROUTE_SYNTAX", 31, "expected a quoted address"],
  ["FROM /* INTO sink.name", "STRATA_ROUTE_SYNTAX", 14, "invalid sink name"],
  ["FROM /* INTO $upstream extra", "STRATA_ROUTE_SYNTAX", 24, "expected the end of the route"],
  // type errors: known up front, reported at the operator or argument
  ["FROM /* WHERE temp > 30 INTO $upstream", "STRATA_ROUTE_TYPE", 20, "as_number(temp)"],
  ["FROM /* WHERE 'a' + 1 = 2 INTO $upstream", "STRATA_ROUTE_TYPE", 19, "join strings with ||"],
  ["FROM /* WHERE 1 || 'a' = 'x' INTO $upstream", "STRATA_ROUTE_TYPE", 17, "'||' joins strings"],
  ["FROM /* WHERE NOT a = 'x' INTO $upstream", "STRATA_ROUTE_TYPE", 15, "NOT (a = b)"],
  ["FROM /* WHERE 1 AND true INTO $upstream", "STRATA_ROUTE_TYPE", 17, "AND needs booleans"],
  ["FROM /* WHERE true < false INTO $upstream", "STRATA_ROUTE_TYPE", 20, "two numbers or two strings"],
  ["FROM /* WHERE abs('x') = 1 INTO $upstream", "STRATA_ROUTE_TYPE", 19, "abs expects a number as argument 1"],
  ["FROM /* WHERE a ?? 1 = 1 INTO $upstream", "STRATA_ROUTE_TYPE", 17, "'??' needs both sides of one type"],
  ["FROM /* WHERE a INTO $upstream", "STRATA_ROUTE_TYPE", 15, "the condition must be true or false"],
  ["FROM /* WHERE -'a' = 1 INTO $upstream", "STRATA_ROUTE_TYPE", 15, "unary '-' needs a number"],
];

for (const [text, code, column, fragment] of CASES) {
  test(`error: ${text}`, () => {
    const err = fault(text);
    assert.equal(err.code, code);
    assert.equal(err.route, "r1");
    assert.equal(err.column, column, err.message);
    assert.ok(err.message.includes(fragment), err.message);
    assert.ok(err.message.startsWith(`route "r1": `), err.message);
    assert.ok(err.message.includes(`at column ${column}`), err.message);
  });
}

test("error message carries the route line and a caret under the column", () => {
  const err = fault("FROM /* WHERE a = INTO $upstream");
  const [, line, caret] = err.message.split("\n");
  assert.equal(line, "  FROM /* WHERE a = INTO $upstream");
  assert.equal(caret, `  ${" ".repeat(18)}^`);
  assert.equal(line!.slice(2)[caret!.length - 3], "I");
});

test("multi-line routes report line and column", () => {
  const err = fault("FROM /messages/*\nWHERE a = 'x'\nINTO $nowhere");
  assert.equal(err.line, 3);
  assert.equal(err.column, 6);
  assert.ok(err.message.includes("line 3, column 6"), err.message);
  assert.ok(err.message.includes("\n  INTO $nowhere\n       ^"), err.message);
});

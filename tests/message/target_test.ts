/**
 * The stage.signal address grammar, table-driven: every form and malformed input.
 */
import assert from "node:assert/strict";
import { lookupChain, parseTarget, type Target } from "../../core/message/target.ts";

const valid: [string | null, Target][] = [
  ["msg", { kind: "self", sync: false, scope: "one", message: "msg" }],
  [":msg", { kind: "self", sync: true, scope: "one", message: "msg" }],
  ["*msg", { kind: "self", sync: false, scope: "all", message: "msg" }],
  ["g.m.cb", { kind: "self", sync: false, scope: "one", message: "g.m.cb" }],
  ["game:move", { kind: "stage", stage: "game", scope: "one", bySender: false, message: "move" }],
  ["game+move", { kind: "stage", stage: "game", scope: "one", bySender: true, message: "move" }],
  ["*game:move", { kind: "stage", stage: "game", scope: "all", bySender: false, message: "move" }],
  ["=game:move", {
    kind: "stage",
    stage: "game",
    scope: "local",
    bySender: false,
    message: "move",
  }],
  ["+game:move", {
    kind: "stage",
    stage: "game",
    scope: "remote",
    bySender: false,
    message: "move",
  }],
  ["*game+move", { kind: "stage", stage: "game", scope: "all", bySender: true, message: "move" }],
  ["stage:callback=result", {
    kind: "stage",
    stage: "stage",
    scope: "one",
    bySender: false,
    message: "callback",
    reply: "result",
  }],
  ["ticket:login=login_callback?feedback", {
    kind: "stage",
    stage: "ticket",
    scope: "one",
    bySender: false,
    message: "login",
    reply: "login_callback",
    query: "feedback",
  }],
  ["route:match?level-3=got!nobody", {
    kind: "stage",
    stage: "route",
    scope: "one",
    bySender: false,
    message: "match",
    query: "level-3",
    reply: "got",
    fail: "nobody",
  }],
  ["route:*match=got", {
    kind: "stage",
    stage: "route",
    scope: "one",
    bySender: false,
    message: "*match",
    reply: "got",
  }],
  ["ticket:=room", {
    kind: "stage",
    stage: "ticket",
    scope: "one",
    bySender: false,
    message: "=room",
  }],
  ["ticket:@room", {
    kind: "stage",
    stage: "ticket",
    scope: "one",
    bySender: false,
    message: "@room",
  }],
  ["route:@", { kind: "stage", stage: "route", scope: "one", bySender: false, message: "@" }],
  ["rank:s?board/tier=cb", {
    kind: "stage",
    stage: "rank",
    scope: "one",
    bySender: false,
    message: "s",
    query: "board/tier",
    reply: "cb",
  }],
  ["a-b.c_1:m", { kind: "stage", stage: "a-b.c_1", scope: "one", bySender: false, message: "m" }],
  [null, { kind: "reply" }],
  [">LOGIN.turn", { kind: "lock", op: "acquire", name: "LOGIN", callback: "turn" }],
  [">LOGIN.g.turn", { kind: "lock", op: "acquire", name: "LOGIN", callback: "g.turn" }],
  [">>LOGIN.turn", { kind: "lock", op: "extend", name: "LOGIN", callback: "turn" }],
  ["<LOGIN.*", { kind: "unlock", name: "LOGIN", callback: "*" }],
  ["<LOGIN.turn", { kind: "unlock", name: "LOGIN", callback: "turn" }],
];

for (const [input, expected] of valid) {
  Deno.test(`parseTarget(${JSON.stringify(input)})`, () => {
    assert.deepEqual(parseTarget(input), expected);
  });
}

const invalid: [string, RegExp][] = [
  ["", /empty target/],
  [":", /empty message id after ':'/],
  ["a::b", /empty message id after ':'/],
  ["::b", /empty message id after ':'/],
  ["game:", /empty message id after ':'/],
  ["game+", /empty message id after '\+'/],
  [":x y", /contains whitespace/],
  ["9game:m", /invalid stage id "9game"/],
  ["*", /nothing after '\*'/],
  ["=msg", /'=' needs a stage/],
  ["+msg", /'\+' needs a stage/],
  ["game:m=", /empty reply after '='/],
  ["game:m?", /empty query after '\?'/],
  ["game:m!", /empty fail after '!'/],
  ["game:m=a=b", /more than one '=' \(reply\)/],
  [">LOGIN", /expected NAME.callback/],
  [">.cb", /invalid lock name ""/],
  [">LOGIN.", /empty callback/],
  [">LOGIN.*", /only valid when releasing/],
  ["<LOGIN", /expected NAME.callback/],
];

for (const [input, pattern] of invalid) {
  Deno.test(`parseTarget(${JSON.stringify(input)}) is a TypeError naming the bad part`, () => {
    assert.throws(() => parseTarget(input), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.ok(error.message.startsWith(`Cannot parse target ${JSON.stringify(input)}: `));
      assert.match(error.message, pattern);
      return true;
    });
  });
}

Deno.test("parseTarget rejects a non-string target", () => {
  assert.throws(() => parseTarget(42 as unknown as string), /expected a string or null/);
});

Deno.test("lookupChain goes from the full id to ever shorter groups, then the stage, then the catch-all", () => {
  assert.deepEqual(lookupChain("a:g.m.cb"), ["a:g.m.cb", "a:g.m.", "a:g.", "a:", "*"]);
  assert.deepEqual(lookupChain("a:g.m."), ["a:g.m.", "a:g.", "a:", "*"]);
  assert.deepEqual(lookupChain("a:msg"), ["a:msg", "a:", "*"]);
  assert.deepEqual(lookupChain("g.m"), ["g.m", "g.", "*"]);
  assert.deepEqual(lookupChain("*"), ["*"]);
  assert.deepEqual(lookupChain("a:s.x:m.cb"), ["a:s.x:m.cb", "a:s.x:m.", "a:s.x:", "a:", "*"]);
});

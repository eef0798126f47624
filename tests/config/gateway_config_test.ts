/**
 * `#gateway`: normalisation with defaults, and errors that name the key path.
 */
import assert from "node:assert/strict";
import { ConfigError, type GatewayConfig, parseConfig } from "../../core/config/mod.ts";

const FILE = "/srv/app/config/stage.json";

Deno.test("parseConfig leaves the gateway off without #gateway", () => {
  assert.equal(parseConfig("{}", FILE).gateway, undefined);
});

Deno.test("parseConfig normalises #gateway with every default", () => {
  const expected: GatewayConfig = {
    listen: "0.0.0.0:8080",
    hostname: "0.0.0.0",
    port: 8080,
    targets: ["login:*"],
    timeoutMs: 5000,
    maxTimeoutMs: 30000,
    maxBodyBytes: 65536,
    maxInflight: 1024,
    cors: [],
  };
  assert.deepEqual(parseConfig(`{"#gateway": {"targets": ["login:*"]}}`, FILE).gateway, expected);
});

Deno.test("parseConfig normalises a full #gateway with the token from the environment", () => {
  const text = `{
    "#gateway": {
      "listen": "[::]:9090",
      "targets": ["login:*", "game:move", "chat:room.*", "*chat:say", "ticket:=room", "game:move"],
      "token": "\${GATEWAY_TOKEN}",
      "timeout": 1500,
      "max_timeout": 20000,
      "max_body": 4096,
      "max_inflight": 64,
      "cors": ["https://example.com", "http://localhost:5173"],
    },
  }`;
  const env = (name: string) => name === "GATEWAY_TOKEN" ? "from-env" : undefined;
  assert.deepEqual(
    parseConfig(text, FILE, env).gateway,
    {
      listen: "[::]:9090",
      hostname: "::",
      port: 9090,
      targets: ["login:*", "game:move", "chat:room.*", "*chat:say", "ticket:=room"],
      token: "from-env",
      timeoutMs: 1500,
      maxTimeoutMs: 20000,
      maxBodyBytes: 4096,
      maxInflight: 64,
      cors: ["https://example.com", "http://localhost:5173"],
    } satisfies GatewayConfig,
  );
});

const TARGET = 'a stage message target "stage:msg" or a prefix ending in * ("login:*")';
const TARGETS = 'a non-empty array of targets ("stage:msg" or a prefix ending in *)';
const ORIGIN = 'an origin like "https://example.com" (scheme://host[:port], no path)';

const invalid: [text: string, path: string, expected: string, found: string][] = [
  [
    '{"#gateway": {}}',
    "#gateway.targets",
    TARGETS,
    "nothing",
  ],
  ['{"#gateway": {"targets": []}}', "#gateway.targets", TARGETS, "[]"],
  ['{"#gateway": {"targets": "login:*"}}', "#gateway.targets", TARGETS, '"login:*"'],
  ['{"#gateway": {"targets": ["*"]}}', "#gateway.targets[0]", TARGET, '"*"'],
  ['{"#gateway": {"targets": ["login:*", "login"]}}', "#gateway.targets[1]", TARGET, '"login"'],
  ['{"#gateway": {"targets": [":msg"]}}', "#gateway.targets[0]", TARGET, '":msg"'],
  ['{"#gateway": {"targets": [">lock.cb"]}}', "#gateway.targets[0]", TARGET, '">lock.cb"'],
  ['{"#gateway": {"targets": ["a:b=cb"]}}', "#gateway.targets[0]", TARGET, '"a:b=cb"'],
  ['{"#gateway": {"targets": ["a:b c"]}}', "#gateway.targets[0]", TARGET, '"a:b c"'],
  ['{"#gateway": {"targets": [7]}}', "#gateway.targets[0]", TARGET, "7"],
  [
    '{"#gateway": {"targets": ["a:*"], "listen": "8080"}}',
    "#gateway.listen",
    'a "host:port" address (port 0..65535, IPv6 in brackets)',
    '"8080"',
  ],
  ['{"#gateway": {"targets": ["a:*"], "token": ""}}', "#gateway.token", "a non-empty string", '""'],
  [
    '{"#gateway": {"targets": ["a:*"], "timeout": 0}}',
    "#gateway.timeout",
    "a positive timeout in ms (at most 2147483647)",
    "0",
  ],
  [
    '{"#gateway": {"targets": ["a:*"], "timeout": 40000}}',
    "#gateway.timeout",
    "a timeout no greater than max_timeout (30000)",
    "40000",
  ],
  [
    '{"#gateway": {"targets": ["a:*"], "max_timeout": 1000}}',
    "#gateway.max_timeout",
    "a largest timeout no smaller than timeout (5000)",
    "1000",
  ],
  [
    '{"#gateway": {"targets": ["a:*"], "max_body": 0}}',
    "#gateway.max_body",
    "a positive number of bytes",
    "0",
  ],
  [
    '{"#gateway": {"targets": ["a:*"], "max_inflight": 1.5}}',
    "#gateway.max_inflight",
    "a positive number of requests in flight",
    "1.5",
  ],
  [
    '{"#gateway": {"targets": ["a:*"], "cors": "https://example.com"}}',
    "#gateway.cors",
    "an array of allowed origins",
    '"https://example.com"',
  ],
  [
    '{"#gateway": {"targets": ["a:*"], "cors": ["https://example.com/"]}}',
    "#gateway.cors[0]",
    ORIGIN,
    '"https://example.com/"',
  ],
  ['{"#gateway": {"targets": ["a:*"], "cors": ["*"]}}', "#gateway.cors[0]", ORIGIN, '"*"'],
  [
    '{"#gateway": {"targets": ["a:*"], "maxBody": 1}}',
    "#gateway.maxBody",
    "one of the keys listen, targets, token, timeout, max_timeout, max_body, max_inflight, cors",
    'unknown key "maxBody"',
  ],
  [
    '{"#gateway": ["a:*"]}',
    "#gateway",
    "an object { listen?, targets, token?, timeout?, max_timeout?, max_body?, max_inflight?, cors? }",
    '["a:*"]',
  ],
];

for (const [text, path, expected, found] of invalid) {
  Deno.test(`parseConfig rejects ${text} at ${path}`, () => {
    let caught: unknown;
    try {
      parseConfig(text, "config/stage.json");
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${caught}`);
    assert.equal(caught.path, path, caught.message);
    assert.equal(caught.expected, expected, caught.message);
    assert.equal(caught.found, found, caught.message);
    assert.equal(
      caught.message,
      `config/stage.json: ${path}: expected ${expected}, found ${found}`,
    );
  });
}

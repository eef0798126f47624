import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ConfigError,
  type EnvLookup,
  loadConfig,
  MAX_WORKERS,
  parseConfig,
  type StageConfig,
  substituteEnv,
} from "../../core/config/mod.ts";

const FILE = "/srv/app/config/stage.json";
const DIR = "/srv/app/config";
const SCRIPTS = `${DIR}/scripts`;
const env = (vars: Record<string, string>): EnvLookup => (name) => vars[name];

/** Asserts that `run` throws a ConfigError with these fields. */
function assertConfigError(
  run: () => unknown,
  expected: Partial<Pick<ConfigError, "path" | "expected" | "found" | "line" | "column">> & {
    message?: string | RegExp;
  },
): ConfigError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${caught}`);
  assert.equal(caught.name, "ConfigError");
  const { message, ...fields } = expected;
  for (const [key, value] of Object.entries(fields)) {
    assert.equal(caught[key as keyof ConfigError], value, `${key} of: ${caught.message}`);
  }
  if (typeof message === "string") assert.equal(caught.message, message);
  if (message instanceof RegExp) assert.match(caught.message, message);
  return caught;
}

Deno.test("parseConfig applies every default to an empty file", () => {
  const config = parseConfig("{}", FILE);
  const expected: StageConfig = {
    configPath: FILE,
    baseDir: DIR,
    threads: {
      workers: Math.min(navigator.hardwareConcurrency, MAX_WORKERS),
      maxPending: 10000,
    },
    startup: [[{ kind: "script", id: "start" }]],
    script: {
      packages: [SCRIPTS],
      permissions: {
        read: [SCRIPTS],
        write: false,
        net: false,
        env: false,
        run: false,
        ffi: false,
        sys: false,
        import: false,
      },
      reloadSeconds: 30,
      shared: { slots: 256, valueBytes: 65536 },
      mains: { start: "start" },
    },
    services: { tcp: [], udp: [] },
    router: undefined,
    cluster: undefined,
    admin: { listen: "127.0.0.1:8800", hostname: "127.0.0.1", port: 8800 },
    gateway: undefined,
    flow: {
      sliceMs: 50,
      hardLimitMs: 5000,
      socketPending: 256,
      readBytes: 65536,
      socketOutBytes: 16 * 1024 * 1024,
      frameDeadlineMs: 10000,
      maxConnections: 100000,
      maxPerIp: 1000,
    },
    tickets: {},
    indexes: {},
    agents: {},
    raw: {},
  };
  assert.deepEqual(config, expected);
});

Deno.test("parseConfig normalises a full config", () => {
  const text = `{
    // platform
    "#services": { "tcp": ["0.0.0.0:8801", "[::]:8802"], "udp": [":9000"] },
    "#router": [200],
    "#cluster": {
      "nats": ["nats://a:4222"], "backup": ["nats://b:4222"], "node": "n1",
      "auth": { "user": "u", "pass": "p" }, "allowRemoteCode": true,
    },
    "#threads": [8, 500],
    "#startup": [["script+game", "script+lobby"], ["=ticket+ticket", "=route+route", "index+rank", "agent+web"]],
    "#admin": { "listen": "[::1]:9900", "token": "t0k" },
    /* stages */
    "script": {
      "%package": ["scripts", "/opt/rollback"],
      "%preload": "preload",
      "%permissions": { "read": ["data"], "net": ["api.example.com:443"], "write": ["out", "/tmp/x"] },
      "%reload": 5,
      "script+game": "game_main",
      "script+lobby": "lobby",
    },
    "=ticket+ticket": [10, { "login": 2, "shop": -1 }],
    "index+rank": { "path": "db/rank.db" },
    "agent+web": { "user-agent": "bot/1", "timeout": 2500, "concurrency": 4, "queue": 0, "max_body": 1024 },
    "custom": { "anything": [1, 2, 3] },
  }`;
  const config = parseConfig(text, FILE);
  assert.deepEqual(config.threads, { workers: 8, maxPending: 500 });
  assert.deepEqual(config.startup, [
    [{ kind: "script", id: "game" }, { kind: "script", id: "lobby" }],
    [
      { kind: "=ticket", id: "ticket" },
      { kind: "=route", id: "route" },
      { kind: "index", id: "rank" },
      { kind: "agent", id: "web" },
    ],
  ]);
  assert.deepEqual(config.script, {
    packages: [SCRIPTS, "/opt/rollback"],
    preload: `${DIR}/preload`,
    permissions: {
      read: [`${DIR}/data`, SCRIPTS, "/opt/rollback", `${DIR}/preload`],
      write: [`${DIR}/out`, "/tmp/x"],
      net: ["api.example.com:443"],
      env: false,
      run: false,
      ffi: false,
      sys: false,
      import: false,
    },
    reloadSeconds: 5,
    shared: { slots: 256, valueBytes: 65536 },
    mains: { game: "game_main", lobby: "lobby" },
  });
  assert.deepEqual(config.services, { tcp: ["0.0.0.0:8801", "[::]:8802"], udp: [":9000"] });
  assert.deepEqual(config.router, { thresholdMs: 200, recoverMs: 100 });
  assert.deepEqual(config.cluster, {
    nats: ["nats://a:4222"],
    backup: ["nats://b:4222"],
    node: "n1",
    auth: { user: "u", pass: "p" },
    allowRemoteCode: true,
  });
  assert.deepEqual(config.admin, {
    listen: "[::1]:9900",
    hostname: "::1",
    port: 9900,
    token: "t0k",
  });
  assert.deepEqual(config.tickets, {
    ticket: { defaultLimit: 10, categories: { login: 2, shop: -1 } },
  });
  assert.deepEqual(config.indexes, { rank: { path: `${DIR}/db/rank.db` } });
  assert.deepEqual(config.agents, {
    web: { userAgent: "bot/1", timeout: 2500, concurrency: 4, queue: 0, maxBody: 1024 },
  });
  assert.deepEqual((config.raw as Record<string, unknown>)["custom"], { anything: [1, 2, 3] });
});

const normalisations: [
  name: string,
  text: string,
  pick: (c: StageConfig) => unknown,
  expected: unknown,
][] = [
  ["#threads with workers only", `{"#threads": [3]}`, (c) => c.threads, {
    workers: 3,
    maxPending: 10000,
  }],
  ["#threads at the worker limit", `{"#threads": [256, 1]}`, (c) => c.threads, {
    workers: 256,
    maxPending: 1,
  }],
  ["#router with recover_ms", `{"#router": [100, 80]}`, (c) => c.router, {
    thresholdMs: 100,
    recoverMs: 80,
  }],
  ["#router with fractional ms", `{"#router": [0.5]}`, (c) => c.router, {
    thresholdMs: 0.5,
    recoverMs: 0.25,
  }],
  ["%package as one string", `{"script": {"%package": "lib"}}`, (c) => c.script.packages, [
    `${DIR}/lib`,
  ]],
  [
    "%package above the config dir",
    `{"script": {"%package": ["../shared", "./a/../b"]}}`,
    (c) => c.script.packages,
    ["/srv/app/shared", `${DIR}/b`],
  ],
  [
    "%package absolute stays",
    `{"script": {"%package": ["/opt/s"]}}`,
    (c) => c.script.permissions.read,
    ["/opt/s"],
  ],
  [
    "%permissions read true",
    `{"script": {"%permissions": {"read": true}}}`,
    (c) => c.script.permissions.read,
    true,
  ],
  [
    "%permissions read false still reads the packages",
    `{"script": {"%permissions": {"read": false, "env": ["HOME"]}}}`,
    (
      c,
    ) => [c.script.permissions.read, c.script.permissions.env],
    [[SCRIPTS], ["HOME"]],
  ],
  [
    "%permissions read list dedupes the packages",
    `{"script": {"%permissions": {"read": ["scripts"]}}}`,
    (
      c,
    ) => c.script.permissions.read,
    [SCRIPTS],
  ],
  ["%reload 0", `{"script": {"%reload": 0}}`, (c) => c.script.reloadSeconds, 0],
  ["%shared", `{"script": {"%shared": [8, 1024]}}`, (c) => c.script.shared, {
    slots: 8,
    valueBytes: 1024,
  }],
  ["script section without mains keeps the default main", `{"script": {"%reload": 1}}`, (c) => [
    c.script.mains,
    c.startup,
  ], [{ start: "start" }, [[{ kind: "script", id: "start" }]]]],
  [
    "#startup absent runs every declared main in one group",
    `{"script": {"script+a": "a", "script+b": "bee"}}`,
    (
      c,
    ) => c.startup,
    [[{ kind: "script", id: "a" }, { kind: "script", id: "b" }]],
  ],
  [
    "service stages in #startup get default settings",
    `{"#startup": [["=ticket+t", "index+i", "agent+g"]]}`,
    (
      c,
    ) => [c.tickets, c.indexes, c.agents],
    [
      { t: { defaultLimit: 1, categories: {} } },
      { i: { path: `${DIR}/data/i.db` } },
      {
        g: {
          userAgent: "Stage/0.1",
          timeout: 10000,
          concurrency: 16,
          queue: 1024,
          maxBody: 8 * 1024 * 1024,
        },
      },
    ],
  ],
  [
    "service sections without #startup entries still normalise",
    `{"=ticket+t": [-3], "index+i": {}, "agent+g": {"timeout": 1}}`,
    (
      c,
    ) => [c.tickets, c.indexes, c.agents],
    [
      { t: { defaultLimit: -3, categories: {} } },
      { i: { path: `${DIR}/data/i.db` } },
      {
        g: {
          userAgent: "Stage/0.1",
          timeout: 1,
          concurrency: 16,
          queue: 1024,
          maxBody: 8 * 1024 * 1024,
        },
      },
    ],
  ],
  [
    "the same id in several groups",
    `{"#startup": [["script+start"], ["script+start"]]}`,
    (c) => c.startup.length,
    2,
  ],
  ["#admin listen on every interface", `{"#admin": {"listen": ":8800"}}`, (c) => c.admin, {
    listen: ":8800",
    hostname: "0.0.0.0",
    port: 8800,
  }],
  [
    "#flow with every key",
    `{"#flow": {"slice_ms": 20, "hard_limit_ms": 1000, "socket_pending": 16, "read_bytes": 4096,
      "socket_out_bytes": 1048576, "frame_deadline_ms": 0, "max_connections": 50, "max_per_ip": 5}}`,
    (c) => c.flow,
    {
      sliceMs: 20,
      hardLimitMs: 1000,
      socketPending: 16,
      readBytes: 4096,
      socketOutBytes: 1048576,
      frameDeadlineMs: 0,
      maxConnections: 50,
      maxPerIp: 5,
    },
  ],
  [
    "#flow keys not given keep their defaults",
    `{"#flow": {"max_per_ip": 10, "slice_ms": 2.5}}`,
    (c) => c.flow,
    {
      sliceMs: 2.5,
      hardLimitMs: 5000,
      socketPending: 256,
      readBytes: 65536,
      socketOutBytes: 16 * 1024 * 1024,
      frameDeadlineMs: 10000,
      maxConnections: 100000,
      maxPerIp: 10,
    },
  ],
  [
    "#flow hard limit just above a raised time slice",
    `{"#flow": {"slice_ms": 4999}}`,
    (c) => [c.flow.sliceMs, c.flow.hardLimitMs],
    [4999, 5000],
  ],
  ["#cluster with defaults", `{"#cluster": {}}`, (c) => c.cluster, {
    nats: [],
    backup: [],
    allowRemoteCode: false,
  }],
  [
    "comments, trailing commas and a BOM",
    `\uFEFF// head\n{ /* a */ "#threads": [2, 3,], // x\n }`,
    (
      c,
    ) => c.threads,
    { workers: 2, maxPending: 3 },
  ],
  [
    "a __proto__ key stays an ordinary key",
    `{"__proto__": {"x": 1}}`,
    (c) =>
      Object.getPrototypeOf(c.raw) === Object.prototype &&
      Object.hasOwn(c.raw as object, "__proto__"),
    true,
  ],
  [
    "strings with escapes",
    `{"#admin": {"token": "a\\"b\\u0041\\n"}}`,
    (c) => c.admin.token,
    'a"bA\n',
  ],
];

for (const [name, text, pick, expected] of normalisations) {
  Deno.test(`parseConfig normalises: ${name}`, () => {
    assert.deepEqual(pick(parseConfig(text, FILE)), expected);
  });
}

Deno.test("parseConfig resolves a relative config path against the working directory", () => {
  const config = parseConfig("{}", "config/stage.json");
  assert.equal(config.configPath, join(Deno.cwd(), "config/stage.json"));
  assert.deepEqual(config.script.packages, [join(Deno.cwd(), "config/scripts")]);
});

const invalid: [text: string, path: string, expected: string, found: string, more?: number][] = [
  ['{"#threads": ["four"]}', "#threads[0]", "a positive integer no greater than 256", '"four"'],
  ['{"#threads": [0]}', "#threads[0]", "a positive integer no greater than 256", "0"],
  ['{"#threads": [257]}', "#threads[0]", "a positive integer no greater than 256", "257"],
  ['{"#threads": [1.5]}', "#threads[0]", "a positive integer no greater than 256", "1.5"],
  ['{"#threads": [4, -1]}', "#threads[1]", "a positive integer", "-1"],
  ['{"#threads": [4, 1, 1]}', "#threads", "an array [workers, max_pending?]", "[4,1,1]"],
  ['{"#threads": []}', "#threads", "an array [workers, max_pending?]", "[]"],
  ['{"#threads": 4}', "#threads", "an array [workers, max_pending?]", "4"],
  ['{"#router": [0]}', "#router[0]", "a positive threshold in ms", "0"],
  [
    '{"#router": [100, 200]}',
    "#router[1]",
    "a recovery delay no greater than threshold_ms (100)",
    "200",
  ],
  [
    '{"#services": {"tcp": ["0.0.0.0:70000"]}}',
    "#services.tcp[0]",
    'a "host:port" address (port 0..65535, IPv6 in brackets)',
    '"0.0.0.0:70000"',
  ],
  [
    '{"#services": {"sctp": []}}',
    "#services.sctp",
    "one of the keys tcp, udp",
    'unknown key "sctp"',
  ],
  [
    '{"#cluster": {"nats": "nats://a"}}',
    "#cluster.nats",
    "an array of NATS server URLs",
    '"nats://a"',
  ],
  [
    '{"#cluster": {"allowRemoteCode": "yes"}}',
    "#cluster.allowRemoteCode",
    "true or false",
    '"yes"',
  ],
  [
    '{"#cluster": {"auth": {"key": "k"}}}',
    "#cluster.auth.key",
    "one of the keys user, pass, token",
    'unknown key "key"',
  ],
  ['{"#startup": []}', "#startup", "at least one process group", "[]"],
  [
    '{"#startup": [[]]}',
    "#startup[0]",
    'a non-empty process group (an array of "kind+id" strings)',
    "[]",
  ],
  [
    '{"#startup": ["script+start"]}',
    "#startup[0]",
    'a process group (an array of "kind+id" strings)',
    '"script+start"',
  ],
  [
    '{"#startup": [["route+r"]]}',
    "#startup[0][0]",
    'a "kind+id" string (kind script, =ticket, =route, index, agent; id matching /^[A-Za-z_][\\w.-]*$/)',
    '"route+r"',
  ],
  [
    '{"#startup": [["index+9lives"]]}',
    "#startup[0][0]",
    'a "kind+id" string (kind script, =ticket, =route, index, agent; id matching /^[A-Za-z_][\\w.-]*$/)',
    '"index+9lives"',
  ],
  [
    '{"#startup": [["=ticket+a", "index+a"]]}',
    "#startup[0][1]",
    'a stage id not already used in this process group (entry 0 uses "a")',
    '"index+a"',
  ],
  [
    '{"#startup": [["script+game"]], "script": {"script+start": "start"}}',
    "#startup[0][0]",
    'a main script entry "script+game" in the script section',
    "none",
  ],
  [
    '{"#startup": [["script+game"]]}',
    "#startup[0][0]",
    'a main script entry "script+game" in the script section',
    "only the default main script+start",
  ],
  [
    '{"#admin": {"listen": "8800"}}',
    "#admin.listen",
    'a "host:port" address (port 0..65535, IPv6 in brackets)',
    '"8800"',
  ],
  ['{"#admin": {"token": ""}}', "#admin.token", "a non-empty string", '""'],
  [
    '{"#threads": [2], "#thread": [2]}',
    "#thread",
    "a platform key (#services, #router, #cluster, #threads, #startup, #admin, #gateway, #flow)",
    'unknown key "#thread"',
  ],
  ['{"#flow": []}', "#flow", "an object of flow settings", "[]"],
  [
    '{"#flow": {"slice": 10}}',
    "#flow.slice",
    "one of the keys slice_ms, hard_limit_ms, socket_pending, read_bytes, socket_out_bytes, frame_deadline_ms, max_connections, max_per_ip",
    'unknown key "slice"',
  ],
  [
    '{"#flow": {"slice_ms": 0}}',
    "#flow.slice_ms",
    "a positive time slice in ms (at most 2147483647)",
    "0",
  ],
  [
    '{"#flow": {"slice_ms": "50"}}',
    "#flow.slice_ms",
    "a positive time slice in ms (at most 2147483647)",
    '"50"',
  ],
  [
    '{"#flow": {"hard_limit_ms": 2147483648}}',
    "#flow.hard_limit_ms",
    "a positive hard limit in ms (at most 2147483647)",
    "2147483648",
  ],
  [
    '{"#flow": {"slice_ms": 100, "hard_limit_ms": 100}}',
    "#flow.hard_limit_ms",
    "a hard limit greater than slice_ms (100)",
    "100",
  ],
  [
    '{"#flow": {"hard_limit_ms": 30}}',
    "#flow.hard_limit_ms",
    "a hard limit greater than slice_ms (50)",
    "30",
  ],
  [
    '{"#flow": {"slice_ms": 5000}}',
    "#flow.slice_ms",
    "a time slice smaller than hard_limit_ms (5000)",
    "5000",
  ],
  ['{"#flow": {"socket_pending": 0}}', "#flow.socket_pending", "a positive number of frames", "0"],
  [
    '{"#flow": {"socket_pending": 1.5}}',
    "#flow.socket_pending",
    "a positive number of frames",
    "1.5",
  ],
  [
    '{"#flow": {"read_bytes": 0}}',
    "#flow.read_bytes",
    "a positive number of bytes (at most 67108864)",
    "0",
  ],
  [
    '{"#flow": {"read_bytes": 67108865}}',
    "#flow.read_bytes",
    "a positive number of bytes (at most 67108864)",
    "67108865",
  ],
  [
    '{"#flow": {"socket_out_bytes": "16m"}}',
    "#flow.socket_out_bytes",
    "a positive number of bytes",
    '"16m"',
  ],
  [
    '{"#flow": {"frame_deadline_ms": -1}}',
    "#flow.frame_deadline_ms",
    "a non-negative deadline in ms (0 = off; at most 2147483647)",
    "-1",
  ],
  [
    '{"#flow": {"frame_deadline_ms": null}}',
    "#flow.frame_deadline_ms",
    "a non-negative deadline in ms (0 = off; at most 2147483647)",
    "null",
  ],
  [
    '{"#flow": {"max_connections": 0}}',
    "#flow.max_connections",
    "a positive number of connections",
    "0",
  ],
  [
    '{"#flow": {"max_per_ip": -5}}',
    "#flow.max_per_ip",
    "a positive number of connections",
    "-5",
  ],
  ['{"script": []}', "script", "an object of script settings", "[]"],
  ['{"script": {"%package": []}}', "script.%package", "a path or a non-empty array of paths", "[]"],
  [
    '{"script": {"%package": ["a", 3]}}',
    "script.%package",
    "a path or a non-empty array of paths",
    '["a",3]',
  ],
  ['{"script": {"%preload": 1}}', "script.%preload", "a folder path", "1"],
  ['{"script": {"%reload": -1}}', "script.%reload", "a non-negative number of seconds", "-1"],
  [
    '{"script": {"%permissions": {"read": "all"}}}',
    "script.%permissions.read",
    "true, false or an array of strings",
    '"all"',
  ],
  [
    '{"script": {"%permissions": {"hrtime": true}}}',
    "script.%permissions.hrtime",
    "one of the keys read, write, net, env, run, ffi, sys, import",
    'unknown key "hrtime"',
  ],
  [
    '{"script": {"%packages": ["x"]}}',
    "script.%packages",
    'one of the keys %package, %preload, %permissions, %reload, %shared or "script+<id>"',
    'unknown key "%packages"',
  ],
  ['{"script": {"script+a": 1}}', "script.script+a", "a main script name", "1"],
  ['{"script": {"script+a": ""}}', "script.script+a", "a main script name", '""'],
  ['{"=ticket+t": ["many"]}', "=ticket+t[0]", "an integer default limit", '"many"'],
  ['{"=ticket+t": [1, {"login": 1.5}]}', "=ticket+t[1].login", "an integer limit", "1.5"],
  ['{"=ticket+t": 5}', "=ticket+t", "an array [default_limit, { category: limit }?]", "5"],
  [
    '{"=ticket+": [1]}',
    "=ticket+",
    'a stage id matching /^[A-Za-z_][\\w.-]*$/ after "=ticket+"',
    'key "=ticket+"',
  ],
  ['{"index+i": {"file": "x"}}', "index+i.file", "one of the keys path", 'unknown key "file"'],
  [
    '{"agent+a.b": {"timeout": 0}}',
    '"agent+a.b".timeout',
    "a positive timeout in ms (at most 2147483647)",
    "0",
  ],
  [
    '{"agent+a": {"timeout": 2147483648}}',
    "agent+a.timeout",
    "a positive timeout in ms (at most 2147483647)",
    "2147483648",
  ],
  ['{"agent+a": {"user-agent": 7}}', "agent+a.user-agent", "a non-empty string", "7"],
  [
    '{"agent+a": {"concurrency": 0}}',
    "agent+a.concurrency",
    "a positive number of requests in flight",
    "0",
  ],
  [
    '{"agent+a": {"concurrency": 2.5}}',
    "agent+a.concurrency",
    "a positive number of requests in flight",
    "2.5",
  ],
  [
    '{"agent+a": {"queue": -1}}',
    "agent+a.queue",
    "a non-negative number of waiting requests",
    "-1",
  ],
  ['{"agent+a": {"max_body": "8m"}}', "agent+a.max_body", "a positive number of bytes", '"8m"'],
  ['{"agent+a": {"max_body": 0}}', "agent+a.max_body", "a positive number of bytes", "0"],
  [
    '{"agent+a": {"maxBody": 1}}',
    "agent+a.maxBody",
    "one of the keys user-agent, timeout, concurrency, queue, max_body",
    'unknown key "maxBody"',
  ],
  ["[]", "", "an object (the stage.json settings)", "[]"],
  ['"text"', "", "an object (the stage.json settings)", '"text"'],
];

for (const [text, path, expected, found] of invalid) {
  Deno.test(`parseConfig rejects ${text} at ${path || "the top level"}`, () => {
    assertConfigError(() => parseConfig(text, "config/stage.json"), {
      path,
      expected,
      found,
      message: `config/stage.json: ${
        path === "" ? "" : `${path}: `
      }expected ${expected}, found ${found}`,
    });
  });
}

Deno.test("parseConfig reports the first problem in document order and counts the others", () => {
  const text = `{
    "#foo": 1,
    "#threads": ["four", 0],
    "script": { "%reload": -1 }
  }`;
  assertConfigError(() => parseConfig(text, "config/stage.json"), {
    path: "#foo",
    message:
      'config/stage.json: #foo: expected a platform key (#services, #router, #cluster, #threads, #startup, #admin, #gateway, #flow), found unknown key "#foo" (and 3 more problems)',
  });
  const reordered = `{ "#threads": ["four", 0], "script": { "%reload": -1 }, "#foo": 1 }`;
  assertConfigError(() => parseConfig(reordered, "config/stage.json"), {
    path: "#threads[0]",
    message: /found "four" \(and 3 more problems\)$/,
  });
  assertConfigError(() => parseConfig('{"#threads": [4, 0], "#x": 1}', "c.json"), {
    message: /^c\.json: #threads\[1\]: .* \(and 1 more problem\)$/,
  });
});

const syntaxErrors: [
  text: string,
  line: number,
  column: number,
  path: string,
  expected: string,
  found: string,
][] = [
  ['{\n  "#threads": [4,\n}', 3, 1, "#threads[1]", "a value", '"}"'],
  [
    '{\n  "#threads": [4]\n  "#admin": {}\n}',
    3,
    3,
    "#threads",
    '"," or "}"',
    'the string "#admin"',
  ],
  ['{\n  "a": tru\n}', 2, 8, "a", "a value", '"tru"'],
  ['{\n  "a": True\n}', 2, 8, "a", "a value", '"True"'],
  ['{ "a": 1, "a": 2 }', 1, 11, "a", "each key once in an object", 'a second "a"'],
  ["{ a: 1 }", 1, 3, "", 'a key in double quotes or "}"', '"a"'],
  ['{ "a" 1 }', 1, 7, "a", '":" after the key', '"1"'],
  ['{ "a": "x\ny" }', 1, 10, "a", "a closing double quote", "a line break"],
  ['{ "a": "x', 1, 10, "a", "a closing double quote", "the end of the file"],
  ['{ "a": "\\q" }', 1, 10, "a", 'an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)', '"q"'],
  ['{ "a": [1, 2] } x', 1, 17, "", "the end of the file", '"x"'],
  ['{ "a": 01 }', 1, 9, "a", '"," or "}"', '"1"'],
  ['{ "a": -x }', 1, 8, "a", "a number", '"-x"'],
  [
    "{ /* open",
    1,
    10,
    "",
    '"*/" closing the comment opened at line 1, column 3',
    "the end of the file",
  ],
  ["", 1, 1, "", "a value", "the end of the file"],
  ['{ "a": { "b": [1, {"c": }] } }', 1, 25, "a.b[1].c", "a value", '"}"'],
];

for (const [text, line, column, path, expected, found] of syntaxErrors) {
  Deno.test(`parseConfig reports a JSON syntax error at ${line}:${column} in ${JSON.stringify(text)}`, () => {
    assertConfigError(() => parseConfig(text, "config/stage.json"), {
      line,
      column,
      path,
      expected,
      found,
      message: `config/stage.json:${line}:${column}: ${
        path === "" ? "" : `${path}: `
      }expected ${expected}, found ${found}`,
    });
  });
}

Deno.test("parseConfig rejects nesting deeper than 512 levels without overflowing the stack", () => {
  assertConfigError(() => parseConfig(`{"x": ${"[".repeat(100_000)}`, FILE), {
    expected: "nesting no deeper than 512 levels",
  });
});

Deno.test("parseConfig substitutes environment variables in string values", () => {
  const text = `{
    "#admin": { "listen": "\${HOST:-127.0.0.1}:\${PORT}", "token": "\${STAGE_ADMIN_TOKEN}" },
    "#cluster": { "nats": ["nats://\${NATS_HOST}:4222"], "node": "$\${NODE}" },
    "script": { "%package": ["\${APP_DIR}/scripts"], "script+start": "start" }
  }`;
  const config = parseConfig(
    text,
    FILE,
    env({ PORT: "9000", STAGE_ADMIN_TOKEN: "s3", NATS_HOST: "bus", APP_DIR: "/opt/app" }),
  );
  assert.deepEqual(config.admin, {
    listen: "127.0.0.1:9000",
    hostname: "127.0.0.1",
    port: 9000,
    token: "s3",
  });
  assert.deepEqual(config.cluster?.nats, ["nats://bus:4222"]);
  assert.equal(config.cluster?.node, "${NODE}");
  assert.deepEqual(config.script.packages, ["/opt/app/scripts"]);
});

Deno.test("parseConfig validates values after substitution", () => {
  assertConfigError(
    () => parseConfig(`{"#admin": {"listen": "\${LISTEN}"}}`, "s.json", env({ LISTEN: "nowhere" })),
    {
      path: "#admin.listen",
      found: '"nowhere"',
    },
  );
});

Deno.test("parseConfig names the key path of an unset environment variable", () => {
  assertConfigError(
    () => parseConfig(`{"#admin": {"token": "\${STAGE_ADMIN_TOKEN}"}}`, "config/stage.json"),
    {
      path: "#admin.token",
      expected: "environment variable STAGE_ADMIN_TOKEN to be set",
      found: '"${STAGE_ADMIN_TOKEN}"',
      message: "config/stage.json: #admin.token: environment variable STAGE_ADMIN_TOKEN is not set",
    },
  );
  assertConfigError(() => parseConfig(`{"script": {"%package": ["a", "\${X}/b"]}}`, "c.json"), {
    path: "script.%package[1]",
    message: "c.json: script.%package[1]: environment variable X is not set",
  });
});

const substitutions: [text: string, vars: Record<string, string>, expected: string][] = [
  ["plain", {}, "plain"],
  ["${A}", { A: "1" }, "1"],
  ["x${A}y${B}z", { A: "1", B: "2" }, "x1y2z"],
  ["${A:-fallback}", {}, "fallback"],
  ["${A:-fallback}", { A: "" }, "fallback"],
  ["${A:-fallback}", { A: "set" }, "set"],
  ["${A:-}", {}, ""],
  ["${A:-a:b-c}", {}, "a:b-c"],
  ["$${A}", {}, "${A}"],
  ["$$${A}", { A: "1" }, "$${A}"],
  ["$A and $ alone", {}, "$A and $ alone"],
  ["${A}", { A: "${B}" }, "${B}"],
];

for (const [text, vars, expected] of substitutions) {
  Deno.test(`substituteEnv expands ${JSON.stringify(text)} to ${JSON.stringify(expected)}`, () => {
    assert.equal(substituteEnv(text, env(vars)), expected);
  });
}

Deno.test("substituteEnv recurses into arrays and objects but leaves keys and non-strings alone", () => {
  const input = { "${K}": ["${V}", 1, true, null, { deep: "${V}" }] };
  assert.deepEqual(substituteEnv(input, env({ K: "key", V: "value" })), {
    "${K}": ["value", 1, true, null, { deep: "value" }],
  });
  assert.deepEqual(input, { "${K}": ["${V}", 1, true, null, { deep: "${V}" }] }, "input untouched");
});

Deno.test("substituteEnv rejects malformed references", () => {
  assertConfigError(() => substituteEnv({ a: ["${A"] }, env({}), { file: "f.json" }), {
    path: "a[0]",
    message: 'f.json: a[0]: "${" without a closing "}" in "${A"',
  });
  assertConfigError(() => substituteEnv({ a: "${1A}" }, env({})), {
    path: "a",
    message: 'config: a: "${1A}" does not name an environment variable (letters, digits, _)',
  });
  assertConfigError(() => substituteEnv({ a: "${}" }, env({})), { path: "a" });
});

Deno.test("substituteEnv reports a failing lookup as a ConfigError with its cause", () => {
  const denied = new Error("Requires env access");
  const error = assertConfigError(
    () =>
      substituteEnv({ a: "${SECRET}" }, () => {
        throw denied;
      }),
    {
      path: "a",
      message: "config: a: cannot read environment variable SECRET: Requires env access",
    },
  );
  assert.equal(error.cause, denied);
});

Deno.test("loadConfig loads the default config/stage.json", async () => {
  const path = fileURLToPath(new URL("../../config/stage.json", import.meta.url));
  const config = await loadConfig(path, env({}));
  assert.equal(config.configPath, path);
  assert.deepEqual(config.startup, [[{ kind: "script", id: "start" }]]);
  assert.deepEqual(config.script.mains, { start: "start" });
  // The deployment's scripts/ folder sits beside config/.
  assert.deepEqual(config.script.packages, [
    fileURLToPath(new URL("../../scripts", import.meta.url)),
  ]);
  assert.equal(config.admin.listen, "127.0.0.1:8800");
});

Deno.test("loadConfig resolves relative paths against the config file's folder, not the cwd", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "deploy"));
    const path = join(dir, "deploy", "stage.json");
    await Deno.writeTextFile(
      path,
      `{"script": {"%package": ["scripts", "\${EXTRA}"], "%preload": "pre"}, "index+rank": {"path": "db/r.db"}}`,
    );
    const config = await loadConfig(path, env({ EXTRA: "../shared" }));
    assert.equal(config.baseDir, join(dir, "deploy"));
    assert.deepEqual(config.script.packages, [join(dir, "deploy", "scripts"), join(dir, "shared")]);
    assert.equal(config.script.preload, join(dir, "deploy", "pre"));
    assert.deepEqual(config.indexes, { rank: { path: join(dir, "deploy", "db", "r.db") } });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig reads variables from the process environment by default", async () => {
  const dir = await Deno.makeTempDir();
  const name = "STAGE_TEST_CONFIG_TOKEN";
  try {
    const path = join(dir, "stage.json");
    await Deno.writeTextFile(path, `{"#admin": {"token": "\${${name}}"}}`);
    Deno.env.set(name, "from-env");
    assert.equal((await loadConfig(path)).admin.token, "from-env");
  } finally {
    Deno.env.delete(name);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig reports an unreadable file as a ConfigError with the cause", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "missing.json");
    const error = await loadConfig(path).then(() => undefined, (error: unknown) => error);
    assert.ok(error instanceof ConfigError);
    assert.equal(error.path, "");
    assert.equal(error.expected, "a readable config file");
    assert.equal(error.found, "NotFound");
    assert.ok(error.cause instanceof Deno.errors.NotFound);
    assert.match(
      error.message,
      new RegExp(`^${path.replaceAll("/", "\\/")}: cannot read the file: `),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

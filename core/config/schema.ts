/**
 * The zod schema of `config/stage.json`, as written (before normalisation).
 *
 * Every schema node's error message is the *expectation* ("a positive
 * integer"); `loadConfig` pairs it with the key path and the value found.
 * Custom issues may carry `params.found` to describe what was found when the
 * value itself would not say it (an unknown key, a missing entry).
 *
 * @module
 */

import { z } from "zod";
import { DEFAULT_FLOW, DEFAULT_GATEWAY } from "./stage_config.ts";

/** Stage ids: a letter or `_`, then letters, digits, `_`, `.` or `-`. */
export const STAGE_ID_PATTERN: RegExp = /^[A-Za-z_][\w.-]*$/;

/** The kinds of stage a `#startup` entry (`"kind+id"`) may name. */
export const STAGE_KINDS = ["script", "=ticket", "=route", "index", "agent"] as const;

/** A kind of stage: a script stage or one of the service stages. */
export type StageKind = typeof STAGE_KINDS[number];

/** The platform keys a config file may contain; any other `#` key is an error. */
export const PLATFORM_KEYS = [
  "#services",
  "#router",
  "#cluster",
  "#threads",
  "#startup",
  "#admin",
  "#gateway",
  "#flow",
] as const;

/** The most workers `#threads` may ask for per process. */
export const MAX_WORKERS = 256;

/** The longest delay a timer can take (2^31 - 1 ms, about 24.8 days); `#flow` times stay below. */
export const MAX_TIMER_MS = 0x7fff_ffff;

/** The largest `#flow.read_bytes` (each open socket holds a read buffer this big). */
export const MAX_READ_BYTES = 64 * 1024 * 1024;

/** Top-level key prefixes of service stage sections, with their schemas below. */
export const SECTION_PREFIXES = ["=ticket+", "index+", "agent+"] as const;

const STARTUP_ENTRY = /^(script|=ticket|=route|index|agent)\+([A-Za-z_][\w.-]*)$/;
const MAIN_KEY = /^script\+([A-Za-z_][\w.-]*)$/;
const HOST_PORT = /^(\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.%\w-]*\]|[A-Za-z0-9_.-]*):(\d{1,5})$/;
const SCRIPT_SETTINGS = ["%package", "%preload", "%permissions", "%reload", "%shared"] as const;

const positiveInteger = (expected = "a positive integer") =>
  z.int({ error: expected }).min(1, { error: expected });
const positiveNumber = (expected = "a positive number") =>
  z.number({ error: expected }).positive({ error: expected });
const integer = (expected = "an integer") => z.int({ error: expected });
const nonEmptyString = (expected = "a non-empty string") =>
  z.string({ error: expected }).min(1, { error: expected });
const hostPort = () => {
  const expected = 'a "host:port" address (port 0..65535, IPv6 in brackets)';
  return z.string({ error: expected }).refine((text) => {
    const match = HOST_PORT.exec(text);
    return match !== null && Number(match[2]) <= 65535;
  }, { error: expected });
};
/** A strict object whose unknown-key issues list the allowed keys. */
const strictObject = <Shape extends z.core.$ZodLooseShape>(shape: Shape, expected: string) =>
  z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `one of the keys ${Object.keys(shape).join(", ")}`
        : expected,
  });
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** `#services`: ports shared by several processes (SO_REUSEPORT). */
export const servicesSchema = strictObject({
  tcp: z.array(hostPort(), { error: 'an array of "host:port" strings' }).optional(),
  udp: z.array(hostPort(), { error: 'an array of "host:port" strings' }).optional(),
}, 'an object { tcp?: ["host:port"], udp?: ["host:port"] }');

/** `#router`: `[threshold_ms, recover_ms?]`, recover no greater than threshold. */
export const routerSchema = z.tuple(
  [
    positiveNumber("a positive threshold in ms"),
    positiveNumber("a positive recovery delay in ms").optional(),
  ],
  { error: "an array [threshold_ms, recover_ms?]" },
).superRefine(([threshold, recover], context) => {
  if (recover !== undefined && recover > threshold) {
    context.addIssue({
      code: "custom",
      path: [1],
      message: `a recovery delay no greater than threshold_ms (${threshold})`,
    });
  }
});

/** `#cluster`: the NATS bus between machines. */
export const clusterSchema = strictObject({
  nats: z.array(nonEmptyString("a NATS server URL"), { error: "an array of NATS server URLs" })
    .optional(),
  backup: z.array(nonEmptyString("a NATS server URL"), { error: "an array of NATS server URLs" })
    .optional(),
  node: nonEmptyString("a non-empty node name").optional(),
  auth: strictObject({
    user: nonEmptyString().optional(),
    pass: nonEmptyString().optional(),
    token: nonEmptyString().optional(),
  }, "an object { user?, pass?, token? }").optional(),
  allowRemoteCode: z.boolean({ error: "true or false" }).optional(),
}, "an object { nats?, backup?, node?, auth?, allowRemoteCode? }");

/** `#threads`: `[workers, max_pending?]`. */
export const threadsSchema = z.tuple([
  positiveInteger(`a positive integer no greater than ${MAX_WORKERS}`).max(MAX_WORKERS, {
    error: `a positive integer no greater than ${MAX_WORKERS}`,
  }),
  positiveInteger().optional(),
], { error: "an array [workers, max_pending?]" });

const startupEntrySchema = z.string({ error: startupEntryExpectation() }).regex(STARTUP_ENTRY, {
  error: startupEntryExpectation(),
});

/** `#startup`: process groups, each a list of `"kind+id"` stages. */
export const startupSchema = z.array(
  z.array(startupEntrySchema, { error: 'a process group (an array of "kind+id" strings)' })
    .min(1, { error: 'a non-empty process group (an array of "kind+id" strings)' })
    .superRefine((group, context) => {
      const seen = new Map<string, number>();
      group.forEach((entry, index) => {
        const id = STARTUP_ENTRY.exec(entry)?.[2];
        if (id === undefined) return;
        const first = seen.get(id);
        if (first === undefined) {
          seen.set(id, index);
        } else {
          context.addIssue({
            code: "custom",
            path: [index],
            message:
              `a stage id not already used in this process group (entry ${first} uses "${id}")`,
          });
        }
      });
    }),
  { error: "an array of process groups" },
).min(1, { error: "at least one process group" });

/** `#admin`: the admin HTTP API. */
export const adminSchema = strictObject({
  listen: hostPort().optional(),
  token: nonEmptyString().optional(),
}, 'an object { listen?: "host:port", token? }');

/**
 * A `#gateway.targets` entry: an exact stage message target (`"game:move"`,
 * `"*chat:say"`) or a prefix ending in `*` (`"login:*"`, `"chat:room.*"`). The
 * stage and its separator are always spelled out, so no entry exposes every
 * stage; reply (`=`) and fail (`!`) modifiers are not targets of their own.
 */
export const GATEWAY_TARGET_PATTERN: RegExp =
  /^[*=+]?[A-Za-z_][\w.-]*[:+](?:\*|[^\s][^\s=!?*]*\*?)$/;

/** An allowed browser origin of `#gateway.cors`: `scheme://host[:port]`, no path. */
export const ORIGIN_PATTERN: RegExp = /^https?:\/\/[^\s/?#]+$/;

const milliseconds = (expected: string, allowZero = false) => {
  const number = z.number({ error: expected }).max(MAX_TIMER_MS, { error: expected });
  return allowZero ? number.min(0, { error: expected }) : number.positive({ error: expected });
};

/** `#gateway`: the public HTTP gateway `POST /api/:target`; `timeout` at most `max_timeout`. */
export const gatewaySchema = strictObject(
  {
    listen: hostPort().optional(),
    targets: z.array(
      z.string({ error: gatewayTargetExpectation() }).regex(GATEWAY_TARGET_PATTERN, {
        error: gatewayTargetExpectation(),
      }),
      { error: 'a non-empty array of targets ("stage:msg" or a prefix ending in *)' },
    ).min(1, { error: 'a non-empty array of targets ("stage:msg" or a prefix ending in *)' }),
    token: nonEmptyString().optional(),
    timeout: milliseconds(`a positive timeout in ms (at most ${MAX_TIMER_MS})`).optional(),
    max_timeout: milliseconds(`a positive timeout in ms (at most ${MAX_TIMER_MS})`).optional(),
    max_body: positiveInteger("a positive number of bytes").optional(),
    max_inflight: positiveInteger("a positive number of requests in flight").optional(),
    cors: z.array(
      z.string({ error: 'an origin like "https://example.com" (scheme://host[:port], no path)' })
        .regex(ORIGIN_PATTERN, {
          error: 'an origin like "https://example.com" (scheme://host[:port], no path)',
        }),
      { error: "an array of allowed origins" },
    ).optional(),
  },
  "an object { listen?, targets, token?, timeout?, max_timeout?, max_body?, max_inflight?, cors? }",
)
  .superRefine((gateway, context) => {
    const timeout = gateway.timeout ?? DEFAULT_GATEWAY.timeoutMs;
    const max = gateway.max_timeout ?? DEFAULT_GATEWAY.maxTimeoutMs;
    if (timeout <= max) return;
    const blame = gateway.timeout !== undefined ? "timeout" : "max_timeout";
    context.addIssue({
      code: "custom",
      path: [blame],
      message: blame === "timeout"
        ? `a timeout no greater than max_timeout (${max})`
        : `a largest timeout no smaller than timeout (${timeout})`,
    });
  });

/**
 * `#flow`: flow-control and abnormal-socket limits. Every key is optional; the
 * hard limit must exceed the time slice (its default when absent).
 */
export const flowSchema = strictObject({
  slice_ms: milliseconds(`a positive time slice in ms (at most ${MAX_TIMER_MS})`).optional(),
  hard_limit_ms: milliseconds(`a positive hard limit in ms (at most ${MAX_TIMER_MS})`).optional(),
  socket_pending: positiveInteger("a positive number of frames").optional(),
  read_bytes: positiveInteger(`a positive number of bytes (at most ${MAX_READ_BYTES})`)
    .max(MAX_READ_BYTES, { error: `a positive number of bytes (at most ${MAX_READ_BYTES})` })
    .optional(),
  socket_out_bytes: positiveInteger("a positive number of bytes").optional(),
  frame_deadline_ms: milliseconds(
    `a non-negative deadline in ms (0 = off; at most ${MAX_TIMER_MS})`,
    true,
  ).optional(),
  max_connections: positiveInteger("a positive number of connections").optional(),
  max_per_ip: positiveInteger("a positive number of connections").optional(),
}, "an object of flow settings").superRefine((flow, context) => {
  const slice = flow.slice_ms ?? DEFAULT_FLOW.sliceMs;
  const hard = flow.hard_limit_ms ?? DEFAULT_FLOW.hardLimitMs;
  if (hard > slice) return;
  // Blame the key that was written (both may be).
  const blame = flow.hard_limit_ms !== undefined ? "hard_limit_ms" : "slice_ms";
  context.addIssue({
    code: "custom",
    path: [blame],
    message: blame === "hard_limit_ms"
      ? `a hard limit greater than slice_ms (${slice})`
      : `a time slice smaller than hard_limit_ms (${hard})`,
  });
});

const permissionValue = () => {
  const expected = "true, false or an array of strings";
  return z.union([z.boolean({ error: expected }), z.array(z.string(), { error: expected })], {
    error: expected,
  });
};

/** `script.%permissions`: Deno permissions for workers. */
export const permissionsSchema = strictObject({
  read: permissionValue().optional(),
  write: permissionValue().optional(),
  net: permissionValue().optional(),
  env: permissionValue().optional(),
  run: permissionValue().optional(),
  ffi: permissionValue().optional(),
  sys: permissionValue().optional(),
  import: permissionValue().optional(),
}, "an object of Deno permissions (read, write, net, env, run, ffi, sys, import)");

/** The `script` section: settings and `"script+<id>": "<main script name>"` entries. */
export const scriptSectionSchema = z.looseObject({
  "%package": z.union([
    nonEmptyString("a path or a non-empty array of paths"),
    z.array(nonEmptyString("a non-empty path"), { error: "a path or a non-empty array of paths" })
      .min(1, { error: "a path or a non-empty array of paths" }),
  ], { error: "a path or a non-empty array of paths" }).optional(),
  "%preload": nonEmptyString("a folder path").optional(),
  "%permissions": permissionsSchema.optional(),
  "%reload": z.number({ error: "a non-negative number of seconds" }).min(0, {
    error: "a non-negative number of seconds",
  }).optional(),
  "%shared": z.tuple([
    positiveInteger("a positive number of shared variables"),
    z.int({ error: "a value size in bytes (at least 16)" }).min(16, {
      error: "a value size in bytes (at least 16)",
    }),
  ], { error: "an array [variables, bytes per value]" }).optional(),
}, { error: "an object of script settings" }).superRefine((section, context) => {
  for (const [key, value] of Object.entries(section)) {
    if ((SCRIPT_SETTINGS as readonly string[]).includes(key)) continue;
    if (!MAIN_KEY.test(key)) {
      context.addIssue({
        code: "custom",
        path: [key],
        message: `one of the keys ${SCRIPT_SETTINGS.join(", ")} or "script+<id>"`,
        params: { found: `unknown key ${JSON.stringify(key)}` },
      });
    } else if (typeof value !== "string" || value === "") {
      context.addIssue({ code: "custom", path: [key], message: "a main script name" });
    }
  }
}, { when: (payload) => isObject(payload.value) });

/** `=ticket+<id>`: `[default_limit, { category: limit }?]`; negative = no waiting list. */
export const ticketSectionSchema = z.tuple([
  integer("an integer default limit"),
  z.record(z.string(), integer("an integer limit"), { error: "an object { category: limit }" })
    .optional(),
], { error: "an array [default_limit, { category: limit }?]" });

/** `index+<id>`: `{ path }` of the SQLite database. */
export const indexSectionSchema = strictObject({
  path: nonEmptyString("a database file path").optional(),
}, "an object { path }");

/** `agent+<id>`: HTTP client settings. */
export const agentSectionSchema = strictObject({
  "user-agent": nonEmptyString().optional(),
  timeout: milliseconds(`a positive timeout in ms (at most ${MAX_TIMER_MS})`).optional(),
  concurrency: positiveInteger("a positive number of requests in flight").optional(),
  queue: z.int({ error: "a non-negative number of waiting requests" }).min(0, {
    error: "a non-negative number of waiting requests",
  }).optional(),
  max_body: positiveInteger("a positive number of bytes").optional(),
}, 'an object { "user-agent"?, timeout?, concurrency?, queue?, max_body? }');

const sectionSchemas = {
  "=ticket+": ticketSectionSchema,
  "index+": indexSectionSchema,
  "agent+": agentSectionSchema,
} as const;

/**
 * The whole file. Keys beginning with `#` configure the platform (unknown
 * ones are errors); `script`, `=ticket+<id>`, `index+<id>` and `agent+<id>`
 * configure stages; other keys are left to scripts (`process.config`).
 */
export const stageConfigSchema = z.looseObject({
  "#services": servicesSchema.optional(),
  "#router": routerSchema.optional(),
  "#cluster": clusterSchema.optional(),
  "#threads": threadsSchema.optional(),
  "#startup": startupSchema.optional(),
  "#admin": adminSchema.optional(),
  "#gateway": gatewaySchema.optional(),
  "#flow": flowSchema.optional(),
  script: scriptSectionSchema.optional(),
}, { error: "an object (the stage.json settings)" }).superRefine((config, context) => {
  for (const [key, value] of Object.entries(config)) {
    if (key.startsWith("#")) {
      if (!(PLATFORM_KEYS as readonly string[]).includes(key)) {
        context.addIssue({
          code: "custom",
          path: [key],
          message: `a platform key (${PLATFORM_KEYS.join(", ")})`,
          params: { found: `unknown key ${JSON.stringify(key)}` },
        });
      }
      continue;
    }
    const prefix = SECTION_PREFIXES.find((candidate) => key.startsWith(candidate));
    if (prefix === undefined) continue;
    if (!STAGE_ID_PATTERN.test(key.slice(prefix.length))) {
      context.addIssue({
        code: "custom",
        path: [key],
        message: `a stage id matching ${STAGE_ID_PATTERN} after "${prefix}"`,
        params: { found: `key ${JSON.stringify(key)}` },
      });
      continue;
    }
    const result = sectionSchemas[prefix].safeParse(value);
    for (const issue of result.error?.issues ?? []) {
      context.addIssue({ ...issue, path: [key, ...issue.path] });
    }
  }
  checkScriptMains(config, context);
}, { when: (payload) => isObject(payload.value) });

/** Every `script+<id>` in `#startup` needs a main script in the `script` section. */
function checkScriptMains(config: Record<string, unknown>, context: z.RefinementCtx): void {
  const startup = config["#startup"];
  const script = config["script"];
  if (!Array.isArray(startup)) return;
  const mains = isObject(script) ? Object.keys(script).filter((key) => MAIN_KEY.test(key)) : [];
  // With no main declared, the default main "start" applies.
  const hasMain = (id: string) =>
    mains.length === 0 ? id === "start" : mains.includes(`script+${id}`);
  startup.forEach((group, groupIndex) => {
    if (!Array.isArray(group)) return;
    group.forEach((entry, entryIndex) => {
      const match = typeof entry === "string" ? STARTUP_ENTRY.exec(entry) : null;
      if (match === null || match[1] !== "script" || hasMain(match[2]!)) return;
      context.addIssue({
        code: "custom",
        path: ["#startup", groupIndex, entryIndex],
        message: `a main script entry "script+${match[2]}" in the script section`,
        params: { found: mains.length === 0 ? "only the default main script+start" : "none" },
      });
    });
  });
}

function gatewayTargetExpectation(): string {
  return 'a stage message target "stage:msg" or a prefix ending in * ("login:*")';
}

function startupEntryExpectation(): string {
  return `a "kind+id" string (kind ${STAGE_KINDS.join(", ")}; id matching ${STAGE_ID_PATTERN})`;
}

/** The config file as written, after validation. */
export type RawStageConfig = z.output<typeof stageConfigSchema>;
/** A `#gateway` section as written. */
export type RawGatewaySection = z.output<typeof gatewaySchema>;
/** A `#flow` section as written. */
export type RawFlowSection = z.output<typeof flowSchema>;
/** A `script` section as written. */
export type RawScriptSection = z.output<typeof scriptSectionSchema>;
/** A `script.%permissions` object as written. */
export type RawPermissions = z.output<typeof permissionsSchema>;
/** A `=ticket+<id>` section as written. */
export type RawTicketSection = z.output<typeof ticketSectionSchema>;
/** An `index+<id>` section as written. */
export type RawIndexSection = z.output<typeof indexSectionSchema>;
/** An `agent+<id>` section as written. */
export type RawAgentSection = z.output<typeof agentSectionSchema>;

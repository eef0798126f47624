/**
 * ScriptLogger: %F %M %L %{ENV} expansion from the caller's position, categories,
 * literal braces without properties and structured properties with them.
 */
import assert from "node:assert/strict";
import { configureSync, type LogRecord, resetSync } from "@logtape/logtape";
import { ScriptLogger } from "../../core/api/script_logger.ts";

function capture(): LogRecord[] {
  const records: LogRecord[] = [];
  configureSync({
    reset: true,
    sinks: { memory: (record) => records.push(record) },
    loggers: [
      { category: ["stage"], lowestLevel: "trace", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
  return records;
}

function text(record: LogRecord): string {
  return record.message.map(String).join("");
}

Deno.test("ScriptLogger expands %F %M %L from the calling script function and %{ENV}", () => {
  const records = capture();
  const logger = new ScriptLogger(
    ["stage", "script", "start"],
    (name) => name === "REGION" ? "kr-1" : undefined,
  );
  function handleLogin() {
    logger.info("%F:%L in %M, region %{REGION}, missing %{NOPE}, 100%%");
  }
  try {
    handleLogin();
    const source = Deno.readTextFileSync(new URL(import.meta.url));
    const line = source.split("\n").findIndex((l) => l.includes('logger.info("%F:%L')) + 1;
    assert.equal(
      text(records[0]!),
      `script_logger_test.ts:${line} in handleLogin, region kr-1, missing %{NOPE}, 100%`,
    );
    assert.deepEqual(records[0]!.category, ["stage", "script", "start"]);
  } finally {
    resetSync();
  }
});

Deno.test("ScriptLogger keeps braces literal without properties and fills placeholders with them", () => {
  const records = capture();
  try {
    const logger = new ScriptLogger(["stage", "script", "start"], () => undefined);
    logger.warn('raw {"json": true}');
    logger.category("login").error("user {user} failed", { user: "kim" });
    logger.out("plain");
    assert.equal(text(records[0]!), 'raw {"json": true}');
    assert.equal(records[0]!.level, "warning");
    assert.equal(text(records[1]!), "user kim failed");
    assert.deepEqual(records[1]!.category, ["stage", "script", "start", "login"]);
    assert.equal(records[2]!.level, "info");
  } finally {
    resetSync();
  }
});

/// <reference types="../../core/api/globals.d.ts" />
/**
 * The ambient types scripts see for service replies match the types the
 * services are written with (a compile-time check: `deno check` fails when
 * they drift apart).
 */
import assert from "node:assert/strict";
import type { InterfaceAddress, TicketRef } from "../../core/pool/wire.ts";
import type { TicketEndReason } from "../../core/services/ticket_book.ts";
import type { AgentRequest, AgentResult } from "../../core/services/agent_request.ts";
import type { DelReply, GetReply, RangeReply, SetReply } from "../../core/services/scoreboard.ts";

/** True only when A and B are assignable both ways. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

const checks = {
  ticket: true satisfies Same<Stage.TicketRef, TicketRef>,
  reason: true satisfies Same<Stage.TicketEndReason, TicketEndReason>,
  set: true satisfies Same<Stage.Index.SetReply, SetReply>,
  get: true satisfies Same<Stage.Index.GetReply, GetReply>,
  del: true satisfies Same<Stage.Index.DelReply, DelReply>,
  range: true satisfies Same<Stage.Index.RangeReply, RangeReply>,
  request: true satisfies Same<Stage.AgentRequest, AgentRequest>,
  result: true satisfies Same<Stage.AgentResult, AgentResult>,
  ifaddr: true satisfies Same<Stage.InterfaceAddress, InterfaceAddress>,
};

Deno.test("globals.d.ts declares the service reply types the services use", () => {
  assert.ok(Object.values(checks).every((same) => same));
});

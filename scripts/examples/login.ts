/// <reference types="../../core/api/globals.d.ts" />
/**
 * Logins behind a ticket (the FAQ scenario): every login touches slow storage
 * (simulated: 200 ms), and at most 10 may do so at once, service-wide. The
 * rest wait in the ticket stage's line, first come first served — so a burst
 * of logins never piles 1-second stalls onto everything else.
 *
 * Run: `deno task start --config config/examples/login.json`, then send
 * `{ message: "login", user: "ann" }` (JSON frames) to 127.0.0.1:8811;
 * `{ message: "stats" }` tells how many logins ran at once at most.
 */

const LISTEN = process.args[0] ?? "127.0.0.1:8811";
/** Logins running now and the most seen at once (process-wide). */
const active = stage.shared("login.active", { now: 0, max: 0, done: 0 });

/** The slow part: a storage round trip. */
async function loadProfile(user: string): Promise<{ user: string; level: number }> {
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { user, level: user.length };
}

// Runs once a login slot is ours; the slot is released when this handler settles.
stage.waitfor("login.run", async (socketId: number, user: string) => {
  active.update((a) => ({ ...a, now: a.now + 1, max: Math.max(a.max, a.now + 1) }));
  try {
    const profile = await loadProfile(user);
    const socket = broker.f(socketId);
    socket.user = user;
    socket.commit({ message: "login", ok: true, profile });
  } finally {
    active.update((a) => ({ ...a, now: a.now - 1, done: a.done + 1 }));
  }
});

// A login that waited past its deadline (30 s) is cancelled: tell the client.
stage.waitfor(
  "ticket:@",
  (_request: string, reason: string, _category: string, socketId: number) => {
    broker.f(socketId).commit({ message: "login", ok: false, reason });
  },
);

broker.ready(`tcp://${LISTEN}?json`, () => (socket, data) => {
  switch (data?.message) {
    case "login":
      if (typeof data.user !== "string" || data.user === "") {
        socket.commit({ message: "login", ok: false, reason: "user must be a non-empty string" });
        return;
      }
      // Queue for a slot of category "login"; give up after 30 s in line.
      stage.signal("ticket:login=login.run?/30000", socket.id, data.user);
      return;
    case "stats":
      socket.commit({ message: "stats", ...active.get() });
      return;
    default:
      socket.commit({
        message: "error",
        reason: `unknown message ${JSON.stringify(data?.message)}`,
      });
  }
});

/**
 * The dashboard in a real browser: headless Chromium (Debian's `chromium`,
 * driven by playwright-core) against a real process under load, served by the
 * real admin app on a real port. Skipped only when /usr/bin/chromium is absent.
 * Leaves a screenshot in tests/output/dashboard.png.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { type Browser, chromium, type Page } from "playwright-core";
import { adminApp, type AdminServer, processSources, serveAdmin } from "../../core/admin/mod.ts";
import { StageClient } from "../../core/client/mod.ts";
import { type Fixture, REFERENCE, repoRoot, startFixture } from "../_helpers/stage_fixture.ts";

const CHROMIUM = "/usr/bin/chromium";
const WORKERS = 2;
const TOKEN = "dashboard-test-token";
/** Longest wait for any one thing the page should show. */
const WAIT_MS = 20_000; // generous: CI runs this beside the whole suite on 2 cores

function chromiumPresent(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

const ECHO = REFERENCE + `
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
stage.waitfor("held", async (ms: number) => {
  await sleep(ms);
});
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  if (data.op === "hold") {
    // Two requests for a category of one slot: one holder, one waiter.
    stage.signal("ticket:job=held", data.ms);
    stage.signal("ticket:job=held", data.ms);
  }
  socket.commit(data);
});
`;

/** Keeps `clients` busy with echo requests (and ticket holds) until `stop()`. */
function startLoad(clients: StageClient[]): { stop(): Promise<void> } {
  let stopped = false;
  let failure: unknown;
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const loops = clients.map(async (client, c) => {
    let lastHold = 0;
    while (!stopped) {
      const batch = Array.from({ length: 8 }, (_, i) => client.request({ op: "echo", c, i }));
      if (c === 0 && Date.now() - lastHold >= 1000) {
        // Two 400 ms holds of a one-slot category each second: a holder most of the time.
        lastHold = Date.now();
        batch.push(client.request({ op: "hold", ms: 400 }));
      }
      await Promise.all(batch);
      await pause(4); // a steady load, not a flood: two cores are shared with the browser
    }
  }).map((loop) =>
    loop.catch((error) => {
      failure ??= error;
      stopped = true;
    })
  );
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      if (failure !== undefined) throw new Error("The load generator failed", { cause: failure });
    },
  };
}

async function attribute(page: Page, selector: string, name: string): Promise<string | null> {
  return await page.locator(selector).first().getAttribute(name, { timeout: WAIT_MS });
}

/** Polls `read` (a read of the page) until `ok`, or fails naming `what` after WAIT_MS. */
async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`Dashboard: ${what}; last ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const polls = async (page: Page) => Number(await attribute(page, "body", "data-polls"));

Deno.test({
  name: chromiumPresent()
    ? "dashboard shows live rates, delays, stages, workers, tickets and state in headless Chromium"
    : `dashboard browser test skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`,
  ignore: !chromiumPresent(),
  async fn() {
    let fixture: Fixture | undefined;
    let server: AdminServer | undefined;
    let browser: Browser | undefined;
    const clients: StageClient[] = [];
    let load: { stop(): Promise<void> } | undefined;
    let failure: unknown;
    const problems: string[] = [];
    try {
      fixture = await startFixture({
        scripts: { "echo.ts": ECHO },
        config: {
          "#startup": [["script+echo", "=ticket+ticket"]],
          "=ticket+ticket": [4, { job: 1 }],
          script: { "script+echo": "echo" },
        },
        workers: WORKERS,
      });
      const running = fixture.running;
      server = serveAdmin(
        adminApp(processSources(running), { token: TOKEN }),
        { hostname: "127.0.0.1", port: 0, token: TOKEN },
        getLogger(["stage", "admin", "test"]),
      );
      const port = fixture.port("", "echo");
      for (let i = 0; i < 3; i++) {
        clients.push(await StageClient.connect({ port, codec: "json", requestTimeoutMs: 5000 }));
      }
      load = startLoad(clients);

      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          "--headless=new",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-dev-shm-usage",
          "--disable-background-networking",
        ],
        timeout: 20_000,
      });
      const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(`console error: ${message.text()}`);
      });
      await page.goto(`http://${server.address}/dashboard#token=${encodeURIComponent(TOKEN)}`, {
        timeout: WAIT_MS,
      });

      // The rate needs two polls; then it moves with the load.
      const first = await until(
        "message rate above 0",
        async () => Number(await attribute(page, "#rate", "data-value")),
        (rate) => rate > 0,
      );
      const pollsAtFirst = await polls(page);
      await until("two more polls (~2 s)", () => polls(page), (n) => n >= pollsAtFirst + 2);
      const second = Number(await attribute(page, "#rate", "data-value"));
      assert.ok(second > 0, `rate after 2 s: ${second}`);
      assert.notEqual(second, first, "the rate is recomputed on every poll");
      assert.match(await page.locator("#rate").innerText(), /^\d+(\.\d)?$/);

      const p95 = Number(await attribute(page, "#p95", "data-value"));
      const p50 = Number(await attribute(page, "#p50", "data-value"));
      assert.ok(Number.isFinite(p95) && p95 >= p50 && p50 >= 0, `p50 ${p50} ms, p95 ${p95} ms`);
      assert.match(await page.locator("#p95").innerText(), /^\d+(\.\d+)? (ms|s)$/);
      assert.notEqual(await attribute(page, "#spark-line", "points"), "");

      assert.equal(await attribute(page, "#state", "data-state"), "ready");
      assert.equal(await page.locator("#state").innerText(), "ready");
      assert.equal(await attribute(page, "#status", "data-kind"), "ok");

      const row = 'tr[data-stage="echo"]';
      assert.equal(await attribute(page, row, "data-kind"), "script");
      assert.equal(await page.locator(`${row} td[data-field="id"]`).innerText(), "echo");
      assert.equal(await attribute(page, `${row} td[data-field="workers"]`, "data-total"), "2");
      assert.equal(await page.locator(`${row} [data-worker]`).count(), WORKERS);
      assert.equal(await page.locator("#workers-total").innerText(), String(WORKERS));
      const stageRate = await until(
        "a message rate on the echo row",
        async () => Number(await attribute(page, `${row} td[data-field="rate"]`, "data-value")),
        (rate) => rate > 0,
      );
      assert.ok(stageRate > 0);
      assert.equal(await attribute(page, 'tr[data-stage="ticket"]', "data-kind"), "=ticket");

      const ticket = 'tr[data-category="job"]';
      await until("the ticket category job", () => page.locator(ticket).count(), (n) => n === 1);
      assert.equal(await attribute(page, ticket, "data-ticket-stage"), "ticket");
      await until(
        "a holder of ticket category job",
        async () =>
          Number(await attribute(page, `${ticket} td[data-field="holders"]`, "data-value")),
        (holders) => holders === 1,
      );

      const output = join(repoRoot, "tests", "output", "dashboard.png");
      await Deno.mkdir(dirname(output), { recursive: true });
      await page.screenshot({ path: output, fullPage: true });
      assert.ok((await Deno.stat(output)).size > 10_000, "a screenshot with content");

      // Without a token, the page says so, and the form lets one in.
      const locked = await browser.newPage();
      await locked.goto(`http://${server.address}/`, { timeout: WAIT_MS });
      assert.match(locked.url(), /\/dashboard$/);
      await until(
        "a 401 message",
        () => attribute(locked, "#status", "data-kind"),
        (k) => k === "auth",
      );
      assert.match(await locked.locator("#status").innerText(), /401 Unauthorized/);
      assert.equal(await locked.locator('tr[data-stage="echo"]').count(), 0);
      await locked.locator("#token").fill(TOKEN, { timeout: WAIT_MS });
      await locked.locator("#auth button").click({ timeout: WAIT_MS });
      await until(
        "the echo row after the token",
        () => locked.locator('tr[data-stage="echo"]').count(),
        (n) => n === 1,
      );
      assert.equal(await attribute(locked, "#status", "data-kind"), "ok");
      assert.ok(await locked.locator("#auth").isHidden());
      await locked.close();

      const unexpected = problems.filter((p) => !/401 \(Unauthorized\)/.test(p));
      assert.deepEqual(unexpected, [], "no script errors, no CSP violations");
    } catch (error) {
      // What the page itself reported (script errors, CSP violations) explains most failures.
      failure = problems.length === 0 ? error : new Error(
        `${error instanceof Error ? error.message : error}; the page reported: ${
          problems.join(" | ")
        }`,
        { cause: error },
      );
    }
    // Everything is closed even when the test or one close failed.
    const closes = [
      () => load?.stop(),
      () => browser?.close(),
      ...clients.map((client) => () => client.close()),
      () => server?.shutdown(),
      () => fixture?.stop(),
    ];
    for (const close of closes) {
      try {
        await close();
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== undefined) throw failure;
  },
});

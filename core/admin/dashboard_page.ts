/**
 * The live dashboard the admin app serves at `GET /dashboard`: one static page
 * (HTML, inline CSS, inline plain JavaScript; no build step, no framework),
 * kept here as strings so `deno compile` embeds it with no include flag.
 *
 * The page holds no data: it reads the admin token from `#token=…` in its URL
 * (or a form), keeps it in `sessionStorage`, and polls `/health`, `/stages`,
 * `/tickets` and `/metrics` every second with `Authorization: Bearer …`. From
 * the metrics it computes the message rate (deltas of
 * `stage_dispatch_delay_seconds_count`, one count per message handled) and
 * dispatch-delay p50/p95/p99 (deltas of that histogram's buckets between two
 * polls), summing across labels so extra ones (`process`) are welcome.
 *
 * Elements the numbers sit in have stable ids and data attributes: `#rate`,
 * `#p50`, `#p95`, `#p99` (`data-value`: msgs/s, ms), `#state` (`data-state`),
 * `#stages tr[data-stage]` with `td[data-field]` cells, `#tickets
 * tr[data-category]`, `#status` (`data-kind`: ok, error, auth), and
 * `body[data-polls]`.
 *
 * @module
 */
import { DASHBOARD_MAIN_SOURCE } from "./_dashboard_script.ts";
import { DASHBOARD_MATH_SOURCE } from "./dashboard_math.ts";

/** The page's inline stylesheet. */
export const DASHBOARD_STYLE: string = `
:root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --fg: #1d2330; --muted: #667085;
  --line: #e2e5ea; --ok: #12805c; --warn: #b54708; --bad: #c01048; --accent: #2f6feb; }
@media (prefers-color-scheme: dark) { :root { --bg: #11151c; --card: #1a2029; --fg: #e6e9ef;
  --muted: #98a2b3; --line: #2b3340; --accent: #6ea0ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; gap: 12px; align-items: center; padding: 12px 20px;
  border-bottom: 1px solid var(--line); background: var(--card); }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 13px; margin: 0 0 8px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
main { padding: 16px 20px; display: grid; gap: 16px; }
.badge { padding: 2px 10px; border-radius: 999px; font-weight: 600; color: #fff;
  background: var(--muted); }
.state-ready { background: var(--ok); }
.state-overloaded { background: var(--bad); }
.state-draining, .state-starting { background: var(--warn); }
#status { color: var(--muted); margin-left: auto; }
#status[data-kind="error"], #status[data-kind="auth"] { color: var(--bad); font-weight: 600; }
form { display: flex; gap: 8px; align-items: center; padding: 12px 20px; background: var(--card);
  border-bottom: 1px solid var(--line); }
form[hidden] { display: none; }
input { font: inherit; padding: 4px 8px; min-width: 280px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 16px; }
.card, section.table { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 16px; }
.big { font-size: 32px; font-weight: 700; font-variant-numeric: tabular-nums; }
#spark { width: 100%; height: 40px; display: block; }
#spark-line { fill: none; stroke: var(--accent); stroke-width: 1.5; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0;
  font-variant-numeric: tabular-nums; }
dt { color: var(--muted); }
dd { margin: 0; font-weight: 600; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: 500; }
td.empty { color: var(--muted); }
small { color: var(--muted); }
.w { display: inline-block; min-width: 22px; margin: 1px; padding: 0 4px; border-radius: 4px;
  text-align: center; background: var(--line); color: var(--muted); }
.w.on { background: var(--accent); color: #fff; }
`;

/** The page's inline script: the math of `dashboard_math.ts`, then the poller. */
export const DASHBOARD_SCRIPT: string = `${DASHBOARD_MATH_SOURCE}\n${DASHBOARD_MAIN_SOURCE}`;

/** The whole page, as `GET /dashboard` serves it. */
export const DASHBOARD_PAGE: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Stage dashboard</title>
<link rel="icon" href="data:,">
<style>${DASHBOARD_STYLE}</style>
</head>
<body data-polls="0">
<header>
  <h1>Stage</h1>
  <span id="state" class="badge" data-state="unknown">unknown</span>
  <span id="status" role="status" aria-live="polite" data-kind="ok">Connecting…</span>
</header>
<form id="auth" hidden>
  <label for="token">Admin token</label>
  <input id="token" type="password" autocomplete="off" spellcheck="false">
  <button type="submit">Use token</button>
</form>
<main>
  <div class="cards">
    <div class="card">
      <h2>Messages / s</h2>
      <div class="big"><span id="rate" data-value="">–</span></div>
      <svg id="spark" viewBox="0 0 240 40" preserveAspectRatio="none" role="img"
        aria-label="Message rate, last 60 s"><polyline id="spark-line" points=""/></svg>
    </div>
    <div class="card">
      <h2>Dispatch delay</h2>
      <dl>
        <dt>p50</dt><dd id="p50" data-value="">–</dd>
        <dt>p95</dt><dd id="p95" data-value="">–</dd>
        <dt>p99</dt><dd id="p99" data-value="">–</dd>
      </dl>
    </div>
    <div class="card">
      <h2>Workers</h2>
      <dl>
        <dt>busy</dt><dd><span id="workers-busy">–</span> / <span id="workers-total">–</span></dd>
        <dt>restarts</dt><dd id="restarts" data-value="">–</dd>
        <dt>lost</dt><dd id="lost" data-value="">–</dd>
      </dl>
    </div>
  </div>
  <section class="table">
    <h2>Stages</h2>
    <table id="stages">
      <thead><tr><th>stage</th><th>kind</th><th>msgs/s</th><th>queued</th><th>oldest</th>
        <th>in flight</th><th>busy / workers</th><th>in flight per worker</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section class="table">
    <h2>Ticket queues</h2>
    <table id="tickets">
      <thead><tr><th>stage</th><th>category</th><th>holders</th><th>waiting</th>
        <th>oldest wait</th><th>limit</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;

async function sha256Source(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return `'sha256-${btoa(String.fromCharCode(...new Uint8Array(digest)))}'`;
}

let policy: Promise<string> | undefined;

/**
 * The page's `Content-Security-Policy`: nothing but its own inline script and
 * style (by SHA-256 hash), fetches to its own origin, and no framing.
 *
 * @example
 * ```ts
 * import { dashboardContentSecurityPolicy } from "./dashboard_page.ts";
 * const csp = await dashboardContentSecurityPolicy();
 * if (!csp.includes("connect-src 'self'") || csp.includes("unsafe-inline")) throw new Error(csp);
 * ```
 */
export function dashboardContentSecurityPolicy(): Promise<string> {
  return policy ??= Promise.all([sha256Source(DASHBOARD_SCRIPT), sha256Source(DASHBOARD_STYLE)])
    .then(([script, style]) =>
      [
        "default-src 'none'",
        `script-src ${script}`,
        `style-src ${style}`,
        "connect-src 'self'",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
      ].join("; ")
    );
}

/**
 * The `GET /dashboard` response: the page, never cached, under its strict
 * content security policy.
 *
 * @example
 * ```ts
 * import { dashboardResponse } from "./dashboard_page.ts";
 * const response = await dashboardResponse();
 * if (!(await response.text()).includes('id="rate"')) throw new Error("no rate");
 * ```
 */
export async function dashboardResponse(): Promise<Response> {
  return new Response(DASHBOARD_PAGE, {
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy": await dashboardContentSecurityPolicy(),
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "x-frame-options": "DENY",
    },
  });
}

/**
 * The agent service stage (DESIGN.md §5): an HTTP client for scripts.
 *
 * `stage.signal("agent:cb", { url, header, data, timeout, extra })` sends the
 * request and calls the sender's waitfor `cb(result)`; with a reply address
 * (`stage.request("agent:get", …)`, `"agent:x=cb"`) the result is the reply.
 * The message id names the callback only: every id reaches the one handler.
 * Failures are results too (`status: 0`, `error: { name, message, code }`), so
 * the callback always runs. At most `concurrency` requests are in flight; the
 * rest wait in arrival order, up to `queue` of them (beyond: `busy`).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { AgentConfig } from "../config/mod.ts";
import { CATCH_ALL_WAITFOR } from "../message/mod.ts";
import type { MetricsRegistry } from "../metrics/mod.ts";
import type { Clock } from "../time/mod.ts";
import {
  type AgentErrorCode,
  type AgentResult,
  errorResult,
  type PreparedRequest,
  prepareRequest,
} from "./agent_request.ts";
import { decodeContent, headerObject, readBody } from "./agent_response.ts";
import { fetchHttp, type HttpClient, HttpClientError } from "./http_client.ts";
import { RequestLimiter } from "./request_limiter.ts";
import type { Service, ServiceApi, ServiceFactory } from "./service_stage.ts";

/** One request waiting for, or holding, a slot. */
interface Job {
  prepared: PreparedRequest;
  /** `clock.now()` by which the result is due (arrival + timeout). */
  deadline: number;
  deliver(result: AgentResult): void;
}

/** Everything an {@link Agent} needs. */
export interface AgentOptions {
  id: string;
  config: AgentConfig;
  clock: Clock;
  log: Logger;
  http: HttpClient;
  metrics?: MetricsRegistry;
}

/** The agent's state: the limiter, the requests in flight and the stop signal. */
export class Agent {
  #options: AgentOptions;
  #limiter: RequestLimiter<Job>;
  #stop = new AbortController();
  #running = new Set<Promise<void>>();
  #counted: ((code: AgentErrorCode | "ok") => void) | undefined;
  #registrations: Disposable[] = [];

  constructor(options: AgentOptions) {
    this.#options = options;
    this.#limiter = new RequestLimiter<Job>({
      concurrency: options.config.concurrency,
      queue: options.config.queue,
      run: (job) => this.#track(this.#run(job)),
      onError: (error) =>
        options.log.error("Agent {id} failed: {error}", { id: options.id, error }),
    });
    const metrics = options.metrics;
    if (metrics !== undefined) {
      const labels = { stage: options.id };
      const requests = metrics.counter(
        "stage_agent_requests_total",
        "Agent requests by result (ok or the error code).",
        ["stage", "result"],
      );
      this.#counted = (code) => requests.inc({ ...labels, result: code });
      this.#registrations.push(
        metrics.gaugeFn("stage_agent_in_flight", "Agent requests in flight.", () => [
          { labels, value: this.#limiter.active },
        ]),
        metrics.gaugeFn("stage_agent_queued", "Agent requests waiting for a slot.", () => [
          { labels, value: this.#limiter.waiting },
        ]),
      );
    }
  }

  /** Requests in flight. */
  get active(): number {
    return this.#limiter.active;
  }

  /** Requests waiting for a slot. */
  get waiting(): number {
    return this.#limiter.waiting;
  }

  /**
   * Takes a request (what a script sent) and calls `deliver` once with its
   * result: at once for an invalid request, a full queue or a stopped agent.
   */
  submit(input: unknown, deliver: (result: AgentResult) => void): void {
    const prepared = prepareRequest(input, this.#options.config);
    if ("status" in prepared) return this.#finish(prepared, deliver);
    if (this.#stop.signal.aborted) {
      return this.#finish(
        errorResult(prepared.url, prepared.extra, "stopped", "the agent has stopped"),
        deliver,
      );
    }
    const job = { prepared, deadline: this.#options.clock.now() + prepared.timeoutMs, deliver };
    if (!this.#limiter.offer(job)) {
      const { concurrency, queue } = this.#options.config;
      this.#finish(
        errorResult(
          prepared.url,
          prepared.extra,
          "busy",
          `agent "${this.#options.id}" is busy: ${concurrency} requests in flight and ${queue} waiting`,
        ),
        deliver,
      );
    }
  }

  /** Aborts the requests in flight and fails the waiting ones (`stopped`); resolves once all are answered. */
  async stop(): Promise<void> {
    this.#stop.abort();
    for (const job of this.#limiter.clear()) {
      const { url, extra } = job.prepared;
      this.#finish(errorResult(url, extra, "stopped", "the agent stopped"), job.deliver);
    }
    await Promise.allSettled([...this.#running]);
    for (const registration of this.#registrations.splice(0)) registration[Symbol.dispose]();
  }

  #track(running: Promise<void>): Promise<void> {
    this.#running.add(running);
    return running.finally(() => this.#running.delete(running));
  }

  async #run(job: Job): Promise<void> {
    const { clock } = this.#options;
    const { url, request, extra } = job.prepared;
    const start = clock.now();
    const left = job.deadline - start;
    if (left <= 0) {
      return this.#finish(
        errorResult(
          url,
          extra,
          "timeout",
          `timed out after ${job.prepared.timeoutMs} ms waiting for a slot`,
        ),
        job.deliver,
      );
    }
    let result: AgentResult;
    try {
      const response = await this.#options.http.send(request, {
        timeoutMs: left,
        signal: this.#stop.signal,
      });
      const bytes = await readBody(response, this.#options.config.maxBody);
      const time = clock.now() - start;
      result = bytes === undefined
        ? errorResult(
          url,
          extra,
          "too_large",
          `the response body of ${url} is larger than max_body (${this.#options.config.maxBody} bytes)`,
          time,
        )
        : this.#success(url, extra, request, response, bytes, time);
    } catch (error) {
      result = this.#failure(job.prepared, error, clock.now() - start);
    }
    this.#finish(result, job.deliver);
  }

  #success(
    url: string,
    extra: unknown,
    request: Request,
    response: Response,
    bytes: Uint8Array,
    time: number,
  ): AgentResult {
    const effective = response.url || request.url;
    const location = response.headers.get("location");
    const redirect = response.status >= 300 && response.status < 400 && location !== null
      ? new URL(location, effective).href
      : "";
    return {
      url,
      status: response.status,
      effective_url: effective,
      redirect_url: redirect,
      cookie: response.headers.getSetCookie(),
      header: headerObject(response.headers),
      extra,
      data: {
        ...decodeContent(response.headers.get("content-type"), bytes),
        length: bytes.length,
        time,
      },
    };
  }

  #failure(prepared: PreparedRequest, error: unknown, time: number): AgentResult {
    const { url, extra, timeoutMs } = prepared;
    if (error instanceof HttpClientError) {
      return errorResult(url, extra, error.code, `${url}: ${error.message}`, time);
    }
    const name = (error as { name?: unknown })?.name;
    if (name === "TimeoutError") {
      return errorResult(
        url,
        extra,
        "timeout",
        `${url}: no complete response within ${timeoutMs} ms`,
        time,
      );
    }
    if (name === "AbortError" && this.#stop.signal.aborted) {
      return errorResult(url, extra, "stopped", `${url}: the agent stopped`, time);
    }
    // The connection broke while the body was being read.
    return errorResult(
      url,
      extra,
      "network",
      `${url}: ${(error as Error)?.message ?? error}`,
      time,
    );
  }

  #finish(result: AgentResult, deliver: (result: AgentResult) => void): void {
    this.#counted?.(result.error?.code ?? "ok");
    if (result.error !== undefined) {
      this.#options.log.debug("Agent {id}: {code}: {message}", {
        id: this.#options.id,
        code: result.error.code,
        message: result.error.message,
      });
    }
    try {
      deliver(result);
    } catch (error) {
      this.#options.log.error("Agent {id} could not deliver the result of {url}: {error}", {
        id: this.#options.id,
        url: result.url,
        error,
      });
    }
  }
}

/** Where a result goes: the reply address if any, else the sender's waitfor named by the message id. */
function handleMessage(api: ServiceApi, agent: Agent, input: unknown): Promise<AgentResult> | void {
  const context = api.context;
  if (context === undefined) return;
  if (context.reply !== undefined) {
    // The handler's resolved value is sent to the reply address.
    return new Promise((resolve) => agent.submit(input, resolve));
  }
  const { from } = context;
  // "agent+cb" arrives as "<sender>:cb"; the sender waits for "cb".
  const prefix = `${from.stage}:`;
  const id = context.message.startsWith(prefix)
    ? context.message.slice(prefix.length)
    : context.message;
  agent.submit(
    input,
    (result) => api.deliverTo({ ...from, id }, [result]),
  );
}

/**
 * Starts an `agent+<id>` stage with `http` (default: `fetch`) as its client.
 * Tests pass a fake client.
 */
export function agentServiceWith(http: HttpClient): ServiceFactory {
  return ({ api, clock, log, metrics, config }): Service => {
    const settings = config.agents[api.id];
    if (settings === undefined) throw new TypeError(`No agent settings for stage "${api.id}"`);
    const agent = new Agent({ id: api.id, config: settings, clock, log, http, metrics });
    // Any message id is a request: the id names the caller's callback.
    api.waitfor(CATCH_ALL_WAITFOR, (input: unknown) => handleMessage(api, agent, input));
    return { stop: () => agent.stop() };
  };
}

/** Starts a `agent+<id>` stage. */
export const startAgentService: ServiceFactory = agentServiceWith(fetchHttp);

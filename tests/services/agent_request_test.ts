/** prepareRequest, decodeContent and readBody: the pure steps of an agent request and response. */
import assert from "node:assert/strict";
import {
  type AgentResult,
  type PreparedRequest,
  prepareRequest,
} from "../../core/services/agent_request.ts";
import {
  decodeContent,
  headerObject,
  isTextual,
  parseContentType,
  readBody,
} from "../../core/services/agent_response.ts";

const defaults = { userAgent: "bot/1", timeout: 1000 };

function prepared(input: unknown): PreparedRequest {
  const result = prepareRequest(input, defaults);
  assert.ok(!("status" in result), `expected a request, got ${JSON.stringify(result)}`);
  return result;
}

function refused(input: unknown): NonNullable<AgentResult["error"]> {
  const result = prepareRequest(input, defaults);
  assert.ok("status" in result, "expected an error result");
  assert.equal(result.status, 0);
  assert.ok(result.error !== undefined);
  return result.error;
}

Deno.test("prepareRequest makes a GET without data and sets the stage's user-agent", async () => {
  const { request, url, timeoutMs, extra } = prepared({ url: "http://h.test/a?b=1", extra: [1] });
  assert.equal(request.method, "GET");
  assert.equal(request.url, "http://h.test/a?b=1");
  assert.equal(request.headers.get("user-agent"), "bot/1");
  assert.equal(request.redirect, "follow");
  assert.equal(await request.text(), "");
  assert.deepEqual([url, timeoutMs, extra], ["http://h.test/a?b=1", 1000, [1]]);
  assert.equal(prepared("http://h.test/").request.method, "GET", "a bare URL is a GET");
});

Deno.test("prepareRequest POSTs data: a string as is, an object as JSON, bytes as bytes", async () => {
  const text = prepared({ url: "http://h.test/", data: "a=1" }).request;
  assert.equal(text.method, "POST");
  assert.equal(await text.text(), "a=1");
  assert.match(text.headers.get("content-type")!, /^text\/plain/);

  const json = prepared({ url: "http://h.test/", data: { x: [1, "y"] } }).request;
  assert.equal(json.method, "POST");
  assert.equal(json.headers.get("content-type"), "application/json");
  assert.deepEqual(await json.json(), { x: [1, "y"] });

  const bytes = prepared({ url: "http://h.test/", data: new Uint8Array([0, 255, 7]) }).request;
  assert.deepEqual(new Uint8Array(await bytes.arrayBuffer()), new Uint8Array([0, 255, 7]));
});

Deno.test("prepareRequest keeps the caller's method, headers, timeout and redirect mode", () => {
  const { request, timeoutMs } = prepared({
    url: "https://h.test/",
    method: "put",
    header: { "User-Agent": "me", "content-type": "application/x-thing", "x-n": 5 },
    data: { a: 1 },
    timeout: 50,
    redirect: "manual",
  });
  assert.equal(request.method, "PUT");
  assert.equal(request.headers.get("user-agent"), "me");
  assert.equal(request.headers.get("content-type"), "application/x-thing");
  assert.equal(request.headers.get("x-n"), "5");
  assert.equal(request.redirect, "manual");
  assert.equal(timeoutMs, 50);
});

const invalid: [name: string, input: unknown, code: string, message: RegExp][] = [
  ["a number", 42, "invalid_request", /expected a request object .* got 42/],
  ["null", null, "invalid_request", /got null/],
  ["no url", { header: {} }, "invalid_url", /url: expected a string/],
  ["a url that is not a string", { url: 5 }, "invalid_url", /url: expected a string/],
  ["an unparseable url", { url: "not a url" }, "invalid_url", /invalid URL "not a url"/],
  ["ftp", { url: "ftp://h.test/f" }, "unsupported_scheme", /unsupported scheme "ftp"/],
  ["file", { url: "file:///etc/passwd" }, "unsupported_scheme", /"file"/],
  ["data", { url: "data:text/plain,hi" }, "unsupported_scheme", /"data"/],
  ["an unknown option", { url: "http://h.test/", headers: {} }, "invalid_request", /"headers"/],
  [
    "a bad header name",
    { url: "http://h.test/", header: { "a b": "c" } },
    "invalid_request",
    /a b/,
  ],
  ["a header object value", { url: "http://h.test/", header: { a: {} } }, "invalid_request", /a:/],
  [
    "a GET with data",
    { url: "http://h.test/", method: "GET", data: "x" },
    "invalid_request",
    /GET/,
  ],
  ["a bad method", { url: "http://h.test/", method: "B AD" }, "invalid_request", /[Mm]ethod/],
  ["a zero timeout", { url: "http://h.test/", timeout: 0 }, "invalid_request", /timeout/],
  ["a string timeout", { url: "http://h.test/", timeout: "1" }, "invalid_request", /timeout/],
  ["a bad redirect", { url: "http://h.test/", redirect: "error" }, "invalid_request", /redirect/],
];

for (const [name, input, code, message] of invalid) {
  Deno.test(`prepareRequest refuses ${name} with ${code}`, () => {
    const error = refused(input);
    assert.equal(error.name, "AgentError");
    assert.equal(error.code, code);
    assert.match(error.message, message);
  });
}

Deno.test("prepareRequest passes extra back in an error result", () => {
  const result = prepareRequest({ url: "gopher://x/", extra: { id: 7 } }, defaults);
  assert.ok("status" in result);
  assert.deepEqual(result.extra, { id: 7 });
  assert.equal(result.url, "gopher://x/");
});

Deno.test("parseContentType and isTextual split and classify media types", () => {
  assert.deepEqual(parseContentType('Text/HTML; Charset="ISO-8859-1"'), {
    type: "text/html",
    charset: "iso-8859-1",
  });
  assert.deepEqual(parseContentType("application/json"), { type: "application/json", charset: "" });
  assert.deepEqual(parseContentType(null), { type: "", charset: "" });
  for (
    const type of ["text/plain", "application/json", "application/problem+json", "image/svg+xml"]
  ) {
    assert.ok(isTextual(type), type);
  }
  assert.ok(isTextual("application/x-www-form-urlencoded"));
  for (const type of ["", "application/octet-stream", "image/png", "application/pdf"]) {
    assert.ok(!isTextual(type), type);
  }
});

Deno.test("decodeContent decodes text with its charset and leaves other types as bytes", () => {
  const latin1 = new Uint8Array([0x63, 0x61, 0x66, 0xe9]);
  assert.deepEqual(decodeContent("text/plain; charset=iso-8859-1", latin1), {
    type: "text/plain",
    content: "café",
    charset: "iso-8859-1",
  });
  const utf8 = new TextEncoder().encode('{"é":1}');
  assert.deepEqual(decodeContent("application/json", utf8), {
    type: "application/json",
    content: '{"é":1}',
    charset: "utf-8",
  });
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47]);
  assert.deepEqual(decodeContent("image/png", png), {
    type: "image/png",
    content: png,
    charset: "",
  });
  assert.deepEqual(decodeContent(null, png), { type: "", content: png, charset: "" });
  assert.deepEqual(
    decodeContent("text/plain; charset=x-unknown", png),
    { type: "text/plain", content: png, charset: "x-unknown" },
    "a charset TextDecoder does not know leaves bytes",
  );
});

function streamed(chunks: number[], headers: HeadersInit = {}): Response {
  let index = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const size = chunks[index++];
      if (size === undefined) controller.close();
      else controller.enqueue(new Uint8Array(size).fill(index));
    },
  });
  return new Response(body, { headers });
}

Deno.test("readBody joins the chunks of a body within the limit", async () => {
  const bytes = await readBody(streamed([3, 4, 5]), 12);
  assert.equal(bytes?.length, 12);
  assert.deepEqual([...bytes!.subarray(2, 4)], [1, 2]);
  assert.equal((await readBody(new Response(null), 1))?.length, 0);
});

Deno.test("readBody stops at the limit, by Content-Length or while streaming", async () => {
  assert.equal(await readBody(streamed([3, 4, 5]), 11), undefined);
  let pulled = 0;
  const endless = new Response(
    new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(1024));
      },
    }),
  );
  assert.equal(await readBody(endless, 10_000), undefined);
  assert.ok(pulled <= 12, `read ${pulled} chunks of an endless body`);
  const declared = new Response("small", { headers: { "content-length": "99999" } });
  assert.equal(await readBody(declared, 100), undefined, "Content-Length over the limit");
});

Deno.test("headerObject lists headers by lowercase name without set-cookie", () => {
  const headers = new Headers([["X-A", "1"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]]);
  assert.deepEqual(headerObject(headers), { "x-a": "1" });
});

/// <reference types="../../core/api/globals.d.ts" />
/**
 * WebSocket clients (browsers included) served through the same socket
 * interface as TCP ones: `broker.ready("ws://…")`, user fields, commit, close,
 * idle expiry. Each JSON text message is one frame; each commit is one message.
 *
 * Run: `deno task start --config config/examples/ws_echo.json`, then in a
 * browser console (or `deno repl`):
 *
 * ```js
 * const ws = new WebSocket("ws://127.0.0.1:8813/echo");
 * ws.onmessage = (event) => console.log(JSON.parse(event.data));
 * ws.onopen = () => {
 *   ws.send(JSON.stringify({ name: "ann" }));
 *   ws.send(JSON.stringify({ text: "hi" })); // → { from: "ann", text: "hi", count: 1 }
 * };
 * ```
 */

const LISTEN = process.args[0] ?? "127.0.0.1:8813";

const server = broker.ready(`ws://${LISTEN}/echo?json&packet=16k`, (socket) => {
  socket.count = 0;
  socket.commit({ hello: socket.remote });
  return (socket, data) => {
    if (typeof data?.name === "string") {
      socket.name = data.name; // a user field: kept with the socket
      return socket.commit({ named: data.name });
    }
    if (data?.text === "bye") {
      socket.commit({ bye: socket.name ?? "anonymous" });
      return socket.close(); // after the reply is written; the client sees close code 1000
    }
    socket.count = (socket.count as number) + 1;
    socket.commit({ from: socket.name ?? "anonymous", text: data?.text, count: socket.count });
  };
});

// A client silent for a minute is closed (a zombie: its tab is long gone).
server.expire = 60_000;

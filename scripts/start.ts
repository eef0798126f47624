/// <reference types="../core/api/globals.d.ts" />
/**
 * The default stage: a BSON echo and time server on 127.0.0.1:8801.
 *
 * Send `{ message: "echo", ... }` and get the same document back; send
 * `{ message: "time" }` and get the server time.
 */

const server = broker.ready("tcp://127.0.0.1:8801?packet=64k,64k", () => {
  return (socket, data) => {
    switch (data?.message) {
      case "echo":
        socket.commit(data);
        return;
      case "time":
        socket.commit({ message: "time", time: new Date(), epochMs: Date.now() });
        return;
      default:
        socket.commit({
          message: "error",
          error: `unknown message ${JSON.stringify(data?.message)}; try "echo" or "time"`,
        });
    }
  };
});

server.close = (socket, reason) => {
  logger.debug("socket {id} from {remote} closed: {reason}", {
    id: socket.id,
    remote: socket.remote,
    reason,
  });
};

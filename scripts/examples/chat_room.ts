/// <reference types="../../core/api/globals.d.ts" />
/**
 * Chat rooms as ticket categories. A room is a category with a negative limit
 * (its size, and no waiting list: a full room says so at once); a member holds
 * a slot of it for as long as it stays, and `"ticket:=room"` reaches every
 * member. Because the ticket stage keeps the books, the size holds across
 * every worker (and, with the multi-process bus, across processes).
 *
 * Run: `deno task start --config config/examples/chat_room.json`, then send JSON frames to
 * 127.0.0.1:8812: `{ message: "join", room: "lobby", name: "ann" }`,
 * `{ message: "say", text: "hi" }`, `{ message: "leave" }`.
 */

const LISTEN = process.args[0] ?? "127.0.0.1:8812";
const ROOM_SIZE = Number(process.args[1] ?? 50);
/** A seat is kept this long without a word; speaking renews it. */
const SEAT_MS = 10 * 60_000;

/** This worker's members: socket id → their seat (ticket), its request and how to end the stay. */
const members = new Map<number, { seat: string; request: string; leave: () => void }>();
/** The same members by ticket request (broadcasts name the request). */
const bySeat = new Map<string, number>();

// The seat is ours: stay a member until leaving (the slot is released when this settles).
stage.waitfor("chat.seat", (socketId: number, name: string) => {
  const ticket = stage.context!.ticket!;
  stage.signal(null, SEAT_MS);
  const socket = broker.f(socketId);
  socket.room = ticket.category;
  socket.seat = ticket.id;
  socket.name = name;
  socket.commit({ message: "joined", room: ticket.category });
  stage.signal(`ticket:=${ticket.category}`, "*", `${name} joined`);
  return new Promise<void>((resolve) => {
    members.set(socketId, { seat: ticket.id, request: ticket.request, leave: resolve });
    bySeat.set(ticket.request, socketId);
  });
});

// Every member of a room gets what is said there.
stage.waitfor("ticket:", (name: string, text: string) => {
  const ticket = stage.context?.ticket;
  const socketId = ticket === undefined ? undefined : bySeat.get(ticket.request);
  if (socketId === undefined || ticket === undefined) return;
  broker.f(socketId).commit({ message: "said", room: ticket.category, name, text });
});

// No seat: the room is full (or its seat expired).
stage.waitfor("ticket:@", (_request: string, reason: string, room: string, socketId: number) => {
  const socket = broker.f(socketId);
  if (reason === "full") socket.commit({ message: "full", room });
  else socket.commit({ message: "left", room, reason });
});

function leave(socketId: number): boolean {
  const member = members.get(socketId);
  if (member === undefined) return false;
  members.delete(socketId);
  bySeat.delete(member.request);
  // Give the seat back now, before anything else is sent, so a join that follows our
  // "left" finds it free (the grant's own release when it settles is then a no-op).
  stage.signal("ticket:<", member.seat);
  member.leave();
  return true;
}

const server = broker.ready(`tcp://${LISTEN}?json`, () => (socket, data) => {
  switch (data?.message) {
    case "join": {
      if (typeof data.room !== "string" || typeof data.name !== "string" || socket.room) {
        socket.commit({ message: "error", reason: "join needs a room and a name, once" });
        return;
      }
      // (Re)define the room: ROOM_SIZE seats, no waiting list. Then ask for a seat.
      stage.signal(`ticket:@${data.room}`, -ROOM_SIZE);
      stage.signal(`ticket:${data.room}=chat.seat`, socket.id, data.name);
      return;
    }
    case "say":
      if (!socket.room) return socket.commit({ message: "error", reason: "join a room first" });
      stage.signal("ticket:>", socket.seat, SEAT_MS); // speaking keeps the seat
      stage.signal(`ticket:=${socket.room}`, socket.name, String(data.text));
      return;
    case "leave": {
      const room = socket.room;
      if (!leave(socket.id)) return socket.commit({ message: "error", reason: "not in a room" });
      socket.room = undefined;
      stage.signal(`ticket:=${room}`, "*", `${socket.name} left`);
      socket.commit({ message: "left", room, reason: "leave" });
      return;
    }
    default:
      socket.commit({
        message: "error",
        reason: `unknown message ${JSON.stringify(data?.message)}`,
      });
  }
});
server.close = (socket) => leave(socket.id);

/**
 * scripts/examples/chat_room.ts as written: rooms of 2 seats held by a ticket
 * stage; a full room refuses at once; what is said reaches every member.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../../core/config/mod.ts";
import { FrameClient } from "../_helpers/frame_client.ts";
import { repoRoot, startFixture } from "../_helpers/stage_fixture.ts";

type Frame = { message: string; room?: string; name?: string; text?: string; reason?: string };

/** Reads frames until one matches (the room's join/leave notices are skipped). */
async function until(client: FrameClient, match: (frame: Frame) => boolean): Promise<Frame> {
  for (;;) {
    const frame = await client.next<Frame>(10_000);
    if (match(frame)) return frame;
  }
}

const said = (text: string) => (frame: Frame) => frame.message === "said" && frame.text === text;

Deno.test("examples/chat_room: seats are limited, a full room refuses, what is said reaches every member", async () => {
  const shipped = await loadConfig(
    join(repoRoot, "config/examples/chat_room.json"),
    () => undefined,
  );
  assert.equal(shipped.script.mains.chat, "chat_room");
  await using fixture = await startFixture({
    config: {
      "#startup": [["script+chat", "=ticket+ticket"]],
      script: { "script+chat": "chat_room" },
    },
    scripts: {
      "chat_room.ts": await Deno.readTextFile(join(repoRoot, "scripts/examples/chat_room.ts")),
    },
    args: ["127.0.0.1:0", "2"],
  });
  const port = fixture.port("", "chat");
  await using ann = await FrameClient.connect(port, "json");
  await using bob = await FrameClient.connect(port, "json");
  await using cid = await FrameClient.connect(port, "json");

  await ann.send({ message: "join", room: "lobby", name: "ann" });
  assert.deepEqual(await until(ann, (f) => f.message === "joined"), {
    message: "joined",
    room: "lobby",
  });
  await bob.send({ message: "join", room: "lobby", name: "bob" });
  await until(bob, (f) => f.message === "joined");
  await cid.send({ message: "join", room: "lobby", name: "cid" });
  assert.deepEqual(await cid.next(), { message: "full", room: "lobby" });

  await ann.send({ message: "say", text: "hello" });
  for (const member of [ann, bob]) {
    assert.deepEqual(await until(member, said("hello")), {
      message: "said",
      room: "lobby",
      name: "ann",
      text: "hello",
    });
  }

  await ann.send({ message: "leave" });
  await until(ann, (f) => f.message === "left");
  await cid.send({ message: "join", room: "lobby", name: "cid" });
  await until(cid, (f) => f.message === "joined");
  await bob.send({ message: "say", text: "welcome" });
  assert.equal((await until(cid, said("welcome"))).name, "bob");
  assert.equal((await until(bob, said("welcome"))).name, "bob");
});

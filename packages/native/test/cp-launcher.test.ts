import { EventEmitter } from "node:events";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  type CpMessage,
  cpRankFromEnv,
  type LauncherChannel,
  launchRanks,
  shareUniqueId,
} from "../src/cp/index.js";

const fixture = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "cp-rank.mjs");

describe("context-parallel launcher (one process per rank)", () => {
  it("starts the ranks with their environment and relays rank 0's unique id to every rank", async () => {
    const out = mkdtempSync(join(tmpdir(), "te-cp-"));
    const exits = await launchRanks({ nproc: 3, script: fixture, env: { CP_TEST_OUT: out }, execArgv: [] });
    expect(exits.map((e) => [e.code, e.signal])).toEqual([
      [0, null],
      [0, null],
      [0, null],
    ]);
    const lines = [0, 1, 2].map((r) => readFileSync(join(out, `rank-${r}.txt`), "utf8").split(" "));
    expect(lines.map((l) => l.slice(0, 3))).toEqual([0, 1, 2].map((r) => [`${r}`, "3", `${r}`]));
    const ids = new Set(lines.map((l) => l[3]));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(/^[0-9a-f]{256}$/);
  });

  it("terminates the other ranks when one fails", async () => {
    const exits = await launchRanks({ nproc: 2, script: fixture, args: ["fail"], execArgv: [] });
    expect(exits[1]).toMatchObject({ code: 3 });
    expect(exits[0]).toMatchObject({ signal: "SIGTERM" });
  });
});

/** A launcher channel in one process: what ranks send goes to `sent`; `answer` plays the launcher. */
class FakeChannel extends EventEmitter implements LauncherChannel {
  readonly sent: CpMessage[] = [];
  constructor(private readonly answer?: CpMessage) {
    super();
  }
  send(message: CpMessage): void {
    this.sent.push(message);
    if (message.type === "te-cp-unique-id-request" && this.answer)
      setTimeout(() => this.emit("message", this.answer));
  }
}

describe("a rank's side of the unique-id exchange", () => {
  const id = Uint8Array.from({ length: 128 }, (_, i) => (i * 7) % 256);
  const hex = Buffer.from(id).toString("hex");

  it("rank 0 makes the id and publishes it; rank 1 asks and receives it", async () => {
    const channel0 = new FakeChannel();
    expect(await shareUniqueId({ rank: 0, size: 2, device: 0 }, () => id, channel0, {})).toEqual(id);
    expect(channel0.sent).toEqual([{ type: "te-cp-unique-id", id: hex }]);
    const channel1 = new FakeChannel({ type: "te-cp-unique-id", id: hex });
    expect(
      await shareUniqueId({ rank: 1, size: 2, device: 1 }, () => new Uint8Array(128), channel1, {}),
    ).toEqual(id);
    expect(channel1.sent).toEqual([{ type: "te-cp-unique-id-request" }]);
  });

  it("takes the id from TE_NCCL_UNIQUE_ID when a launcher gave it up front, and checks it", async () => {
    const me = { rank: 2, size: 4, device: 2 };
    expect(
      await shareUniqueId(me, () => new Uint8Array(128), new FakeChannel(), { TE_NCCL_UNIQUE_ID: hex }),
    ).toEqual(id);
    await expect(
      shareUniqueId(me, () => id, new FakeChannel(), { TE_NCCL_UNIQUE_ID: "abc" }),
    ).rejects.toThrow(/128 bytes/);
  });

  it("reads its rank from the environment, with a reason when it is missing", () => {
    expect(cpRankFromEnv({ TE_CP_RANK: "1", TE_CP_SIZE: "2" })).toEqual({ rank: 1, size: 2, device: 1 });
    expect(() => cpRankFromEnv({ TE_CP_SIZE: "2" })).toThrow(/TE_CP_RANK/);
    expect(() => cpRankFromEnv({ TE_CP_RANK: "2", TE_CP_SIZE: "2" })).toThrow(/not a rank/);
  });
});

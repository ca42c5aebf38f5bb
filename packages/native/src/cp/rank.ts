import { CP_ENV, type CpMessage, fromHex, isCpMessage, toHex, UNIQUE_ID_BYTES } from "./protocol.js";

/** Who this process is in a context-parallel run started by launchRanks (or any launcher setting CP_ENV). */
export interface CpRank {
  readonly rank: number;
  readonly size: number;
  readonly device: number;
}

export function cpRankFromEnv(env: NodeJS.ProcessEnv = process.env): CpRank {
  const read = (name: string): number => {
    const value = Number(env[name]);
    if (env[name] === undefined || !Number.isInteger(value) || value < 0) {
      throw new Error(
        `${name}: expected a non-negative integer in the environment (set by the context-parallel launcher), got ${env[name]}`,
      );
    }
    return value;
  };
  const size = read(CP_ENV.size);
  const rank = read(CP_ENV.rank);
  if (size < 1 || rank >= size)
    throw new Error(`${CP_ENV.rank}=${rank} is not a rank of ${CP_ENV.size}=${size}`);
  return { rank, size, device: env[CP_ENV.device] === undefined ? rank : read(CP_ENV.device) };
}

/** The IPC channel to the launcher: `process` in a rank started with fork. */
export interface LauncherChannel {
  send?(message: CpMessage): unknown;
  on(event: "message", listener: (message: unknown) => void): unknown;
  off(event: "message", listener: (message: unknown) => void): unknown;
}

/**
 * Agrees on NCCL's unique id: rank 0 makes it with `create` (the addon's ncclGetUniqueId) and
 * publishes it to the launcher; the other ranks take it from TE_NCCL_UNIQUE_ID when set, else ask
 * the launcher and wait for its answer.
 */
export async function shareUniqueId(
  me: CpRank,
  create: () => Uint8Array,
  channel: LauncherChannel = process as unknown as LauncherChannel,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Uint8Array> {
  if (me.rank === 0) {
    const id = create();
    if (id.length !== UNIQUE_ID_BYTES)
      throw new Error(`a unique id has ${UNIQUE_ID_BYTES} bytes, got ${id.length}`);
    if (me.size > 1) {
      if (!channel.send)
        throw new Error("rank 0 has no IPC channel to the launcher to publish the unique id on");
      channel.send({ type: "te-cp-unique-id", id: toHex(id) });
    }
    return id;
  }
  const given = env[CP_ENV.uniqueId];
  if (given !== undefined) return fromHex(given);
  const send = channel.send;
  if (!send)
    throw new Error(`rank ${me.rank} has neither ${CP_ENV.uniqueId} nor an IPC channel to a launcher`);
  return new Promise((resolve, reject) => {
    const listener = (message: unknown) => {
      if (!isCpMessage(message) || message.type !== "te-cp-unique-id") return;
      channel.off("message", listener);
      try {
        resolve(fromHex(message.id));
      } catch (error) {
        reject(error);
      }
    };
    channel.on("message", listener);
    send.call(channel, { type: "te-cp-unique-id-request" });
  });
}

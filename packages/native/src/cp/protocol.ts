/**
 * The launcher ⇄ rank protocol of context-parallel runs (one Node process per GPU): environment
 * variables each rank starts with, and the IPC messages that carry NCCL's unique id from rank 0 to
 * the others through the launcher. Plain JSON, so a rank written in any language can follow it.
 */

/** Environment of a rank. */
export const CP_ENV = {
  rank: "TE_CP_RANK",
  size: "TE_CP_SIZE",
  /** CUDA device ordinal the rank uses (its local rank). */
  device: "TE_CP_DEVICE",
  /** The unique id as hex, when a launcher other than ours hands it out up front. */
  uniqueId: "TE_NCCL_UNIQUE_ID",
} as const;

/** Rank 0 → launcher: the id it made (hex of NCCL's 128 bytes). */
export interface UniqueIdPublished {
  readonly type: "te-cp-unique-id";
  readonly id: string;
}

/** Rank r > 0 → launcher: asks for the id; the launcher answers with a UniqueIdPublished once it has it. */
export interface UniqueIdRequested {
  readonly type: "te-cp-unique-id-request";
}

export type CpMessage = UniqueIdPublished | UniqueIdRequested;

export function isCpMessage(x: unknown): x is CpMessage {
  if (typeof x !== "object" || x === null) return false;
  const m = x as { type?: unknown; id?: unknown };
  return (m.type === "te-cp-unique-id" && typeof m.id === "string") || m.type === "te-cp-unique-id-request";
}

/** NCCL's ncclUniqueId is 128 opaque bytes. */
export const UNIQUE_ID_BYTES = 128;

export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

export function fromHex(hex: string): Uint8Array {
  if (!/^[0-9a-f]*$/i.test(hex) || hex.length !== 2 * UNIQUE_ID_BYTES) {
    throw new Error(
      `an NCCL unique id is ${UNIQUE_ID_BYTES} bytes as ${2 * UNIQUE_ID_BYTES} hex digits, got ${hex.length} characters`,
    );
  }
  return new Uint8Array(Buffer.from(hex, "hex"));
}

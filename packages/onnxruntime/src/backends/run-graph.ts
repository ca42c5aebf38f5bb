import { BackendError } from "@te/core";
import type { Feeds } from "../feeds.js";
import type { SessionCache } from "../runtime/session-cache.js";
import type { OrtTensor } from "../tensors.js";

/** Runs the cached session of `key` (built by `build` on first use); ORT failures become BackendErrors. */
export async function runGraph(
  backendId: string,
  sessions: SessionCache,
  key: string,
  build: () => Uint8Array,
  feeds: Feeds,
): Promise<Record<string, OrtTensor>> {
  try {
    const session = await sessions.get(key, build);
    return await session.run(feeds);
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new BackendError(backendId, `ONNX Runtime failed: ${message}`, "TE_BACKEND_FAILED", { cause });
  }
}

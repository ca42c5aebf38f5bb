import type { InferenceSession } from "onnxruntime-common";
import { createSession, onOrtRuntimeChange } from "./ort-runtime.js";

/** Sessions kept per cache; the least recently used is released past this. */
const CAPACITY = 48;

/**
 * InferenceSessions per graph key. Building and optimising a session costs far more than running
 * it, so each distinct graph (a configuration of shapes and features) is built once.
 */
export class SessionCache {
  private readonly sessions = new Map<string, Promise<InferenceSession>>();

  constructor() {
    onOrtRuntimeChange(() => this.clear());
  }

  get(key: string, build: () => Uint8Array): Promise<InferenceSession> {
    const hit = this.sessions.get(key);
    if (hit) {
      // Re-insert: Map order is the recency order.
      this.sessions.delete(key);
      this.sessions.set(key, hit);
      return hit;
    }
    const created = createSession(build());
    // A failed creation is not cached: the next call tries again (and reports its own error).
    created.catch(() => this.sessions.delete(key));
    this.sessions.set(key, created);
    while (this.sessions.size > CAPACITY) {
      const [oldest, session] = this.sessions.entries().next().value as [string, Promise<InferenceSession>];
      this.sessions.delete(oldest);
      session.then((s) => s.release()).catch(() => undefined);
    }
    return created;
  }

  clear(): void {
    for (const session of this.sessions.values()) session.then((s) => s.release()).catch(() => undefined);
    this.sessions.clear();
  }

  get size(): number {
    return this.sessions.size;
  }
}

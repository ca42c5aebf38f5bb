import type { TeControls } from "./env.js";

/**
 * Logging in TE's wording: `[INFO | DotProductAttention]: Running with FusedAttention backend (sub-backend 1)`.
 * NVTE_DEBUG=1 turns it on; NVTE_DEBUG_LEVEL=1 prints info lines, 2 adds debug lines (each backend's
 * reasons, the run config). Warnings always print.
 */
export type LogLevel = "WARNING" | "INFO" | "DEBUG";

export type LogSink = (line: string) => void;

let sink: LogSink = (line) => console.error(line);

/** Sends log lines elsewhere (tests, a UI); returns the previous sink. */
export function setLogSink(next: LogSink): LogSink {
  const previous = sink;
  sink = next;
  return previous;
}

export function logEnabled(level: LogLevel, controls: TeControls): boolean {
  if (level === "WARNING") return true;
  if (!controls.debug) return false;
  return level === "INFO" ? controls.debugLevel >= 1 : controls.debugLevel >= 2;
}

export function log(level: LogLevel, controls: TeControls, message: string, logger = "DotProductAttention"): void {
  if (logEnabled(level, controls)) sink(`[${level} | ${logger}]: ${message}`);
}

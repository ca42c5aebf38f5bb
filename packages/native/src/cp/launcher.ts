import { type ChildProcess, fork } from "node:child_process";
import { CP_ENV, isCpMessage, type UniqueIdPublished } from "./protocol.js";

export interface LaunchOptions {
  /** Ranks (processes) to start: one per GPU. */
  readonly nproc: number;
  /** The script every rank runs. */
  readonly script: string;
  readonly args?: readonly string[];
  /** Added to the launcher's environment for every rank. */
  readonly env?: Readonly<Record<string, string>>;
  readonly execArgv?: readonly string[];
}

export interface RankExit {
  readonly rank: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * Starts `nproc` Node processes running `script`, rank r with TE_CP_RANK=r, TE_CP_SIZE=nproc and
 * TE_CP_DEVICE=r (CUDA_VISIBLE_DEVICES untouched, so every rank sees every GPU as NCCL's
 * peer-to-peer paths want), relays the NCCL unique id rank 0 publishes to the ranks that ask for it,
 * and resolves with every rank's exit once all have exited. When a rank fails, the others are
 * terminated: an NCCL collective would otherwise wait forever for the dead rank. The launcher never
 * loads NCCL or CUDA itself.
 */
export function launchRanks(options: LaunchOptions): Promise<RankExit[]> {
  const { nproc } = options;
  if (!Number.isInteger(nproc) || nproc < 1)
    throw new RangeError(`nproc: expected a positive integer, got ${nproc}`);
  let published: UniqueIdPublished | null = null;
  const waiting = new Set<ChildProcess>();
  const children: ChildProcess[] = [];
  const exits: (RankExit | undefined)[] = new Array(nproc);
  let failed = false;

  return new Promise((resolve) => {
    let remaining = nproc;
    for (let rank = 0; rank < nproc; rank++) {
      const child = fork(options.script, [...(options.args ?? [])], {
        env: {
          ...process.env,
          ...options.env,
          [CP_ENV.rank]: String(rank),
          [CP_ENV.size]: String(nproc),
          [CP_ENV.device]: String(rank),
        },
        execArgv: [...(options.execArgv ?? process.execArgv)],
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      children.push(child);
      child.on("message", (message) => {
        if (!isCpMessage(message)) return;
        if (message.type === "te-cp-unique-id" && rank === 0 && !published) {
          published = message;
          for (const w of waiting) w.send(published);
          waiting.clear();
        } else if (message.type === "te-cp-unique-id-request") {
          if (published) child.send(published);
          else waiting.add(child);
        }
      });
      child.on("exit", (code, signal) => {
        exits[rank] = { rank, code, signal };
        waiting.delete(child);
        if ((code !== 0 || signal !== null) && !failed) {
          failed = true;
          for (const other of children) if (other !== child && other.exitCode === null) other.kill("SIGTERM");
        }
        remaining--;
        if (remaining === 0) resolve(exits as RankExit[]);
      });
    }
  });
}

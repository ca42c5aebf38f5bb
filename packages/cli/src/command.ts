import { type ParseArgsConfig, parseArgs } from "node:util";

/**
 * One `te` subcommand. `run` gets the arguments after the command's name and resolves to the exit
 * code; it writes its report to `out` (stdout) and problems to `err` (stderr).
 */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(argv: readonly string[], io: CommandIO): Promise<number>;
}

export interface CommandIO {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/** A wrong command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** node:util parseArgs in strict mode, its errors turned into UsageError. */
export function parseCommandLine<O extends Options>(
  argv: readonly string[],
  options: O,
  allowPositionals: boolean,
) {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A positive integer option value, or a UsageError naming the option. */
export function positiveInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new UsageError(`--${name}: expected a positive integer, got "${value}"`);
  return n;
}

/** One of the allowed values, or a UsageError listing them. */
export function oneOf<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${name}: expected one of ${allowed.join(", ")}, got "${value}"`);
  }
  return value as T;
}

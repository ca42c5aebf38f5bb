/**
 * Error classes. Each carries a stable `code` and an `isInstance` check that works across copies of
 * the package (two versions of @te/core in one process would break `instanceof`).
 */
const MARKER = Symbol.for("@te/core/error");

export class TeError extends Error {
  readonly [MARKER] = true;
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TeError";
    this.code = code;
  }
  static isInstance(x: unknown): x is TeError {
    return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[MARKER] === true;
  }
}

/** A call argument is wrong: names the argument, what was expected and what came. */
export class ArgumentError extends TeError {
  readonly argument: string;
  constructor(argument: string, expected: string, got?: unknown) {
    const gotText = got === undefined ? "" : `, got ${describeValue(got)}`;
    super("TE_INVALID_ARGUMENT", `${argument}: expected ${expected}${gotText}`);
    this.name = "ArgumentError";
    this.argument = argument;
  }
  static override isInstance(x: unknown): x is ArgumentError {
    return TeError.isInstance(x) && x.code === "TE_INVALID_ARGUMENT";
  }
}

/** A backend refused or failed at run time (kernel error, out of memory, library status). */
export class BackendError extends TeError {
  readonly backend: string;
  constructor(backend: string, message: string, code = "TE_BACKEND_FAILED", options?: { cause?: unknown }) {
    super(code, `[${backend}] ${message}`, options);
    this.name = "BackendError";
    this.backend = backend;
  }
}

export function describeValue(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(describeValue).join(", ")}]`;
  if (ArrayBuffer.isView(x)) return `${x.constructor.name}(${(x as unknown as ArrayLike<number>).length})`;
  if (typeof x === "string") return JSON.stringify(x);
  if (typeof x === "number" && Number.isNaN(x)) return "NaN";
  if (x === null || x === undefined || typeof x !== "object") return String(x);
  return x.constructor?.name ?? "object";
}

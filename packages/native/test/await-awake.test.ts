import { describe, expect, it } from "vitest";
import { awaitAwake } from "../src/device.js";

describe("awaitAwake (synchronize keeps the event loop turning while it waits)", () => {
  it("resolves and rejects as the wait does, and other work runs meanwhile", async () => {
    const later = <T>(ms: number, f: () => T) => new Promise<T>((r) => setTimeout(() => r(f()), ms));
    let ticks = 0;
    const other = setInterval(() => ticks++, 1);
    await expect(
      awaitAwake(
        later(20, () => "done"),
        5,
      ),
    ).resolves.toBe("done");
    clearInterval(other);
    expect(ticks).toBeGreaterThan(0);
    const failed = Promise.reject(
      Object.assign(new Error("synchronize: illegal address"), { code: "TE_ERR_CUDA" }),
    );
    await expect(awaitAwake(failed)).rejects.toMatchObject({ code: "TE_ERR_CUDA" });
  });
});

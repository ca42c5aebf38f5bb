import { describe, expect, it } from "vitest";
import {
  attachFp8DeviceState,
  createFp8Meta,
  type DelayedScaling,
  delayedScaling,
  type Fp8DeviceState,
  type Fp8MetaState,
  fp8DeviceStateOf,
  hostTensor,
  quantizeFp8,
  readFp8Meta,
  recordSharedAmax,
  releaseFp8Meta,
  updateAttentionFp8Scales,
  updateFp8Meta,
} from "../src/index.js";

/**
 * A device copy faked with a second host record (its "device memory"): updates run core's host
 * update on it, so what the test checks is who owns the state when, not the update itself.
 */
class FakeDevice implements Fp8DeviceState {
  readonly copy: Fp8MetaState;
  log: string[] = [];
  disposed = false;
  constructor(
    readonly owner: string,
    host: Fp8MetaState,
    private readonly canUpdate = true,
  ) {
    this.copy = structuredClone(host);
  }
  update(recipe: DelayedScaling, pass: "forward" | "backward" | "both"): boolean {
    this.log.push(`update ${pass}`);
    if (!this.canUpdate) return false;
    if (pass === "both") updateFp8Meta(this.copy, recipe);
    else updateAttentionFp8Scales(this.copy, recipe, pass);
    return true;
  }
  download(into: Fp8MetaState): void {
    this.log.push("download");
    for (const [name, e] of Object.entries(this.copy) as [keyof Fp8MetaState, Fp8MetaState["q"]][]) {
      into[name].scale = e.scale;
      into[name].scaleInv = e.scaleInv;
      into[name].amaxHistory.set(e.amaxHistory);
    }
  }
  dispose(): void {
    this.log.push("dispose");
    this.disposed = true;
  }
}

describe("FP8 state residency (fp8-residency.ts)", () => {
  const recipe = delayedScaling({ fp8Dpa: true, amaxHistoryLen: 3 });

  it("hands scale updates to the device copy, and reads are explicit downloads", () => {
    const state = createFp8Meta(recipe);
    const device = new FakeDevice("gpu", state);
    attachFp8DeviceState(state, device);
    device.copy.q.amaxHistory[0] = 2; // what a device call recorded
    updateAttentionFp8Scales(state, recipe, "forward");
    expect(device.log).toEqual(["update forward"]);
    expect(state.q.scale).toBe(1); // the host record is stale until read
    expect(readFp8Meta(state).q.scale).toBe(448 / 2);
    expect(fp8DeviceStateOf(state)).toBe(device); // a read keeps the device the owner
    updateFp8Meta(state, recipe);
    expect(device.log.at(-1)).toBe("update both");
  });

  it("releases the state to the host before host recording, host updates and the emulation", () => {
    const state = createFp8Meta(recipe);
    const device = new FakeDevice("gpu", state);
    attachFp8DeviceState(state, device);
    device.copy.o.amaxHistory[0] = 5;
    recordSharedAmax(state, { o: 3 });
    expect(device.log).toEqual(["download", "dispose"]);
    expect(fp8DeviceStateOf(state)).toBeUndefined();
    expect(state.o.amaxHistory[0]).toBe(5); // the device's value, then max(5, 3)

    const again = createFp8Meta(recipe);
    attachFp8DeviceState(again, new FakeDevice("gpu", again));
    // An entry-level host function finds its state's device copy too.
    quantizeFp8(hostTensor("fp32", [1], new Float32Array([7])), "fp8e4m3", 1, again.q);
    expect(fp8DeviceStateOf(again)).toBeUndefined();
    expect(again.q.amaxHistory[0]).toBe(7);
  });

  it("updates on the host when the device cannot run the recipe's algo", () => {
    const custom = delayedScaling({ fp8Dpa: true, amaxHistoryLen: 3, amaxComputeAlgo: (h) => h[0] * 2 });
    const state = createFp8Meta(custom);
    const device = new FakeDevice("gpu", state, false);
    attachFp8DeviceState(state, device);
    device.copy.s.amaxHistory[0] = 4;
    updateAttentionFp8Scales(state, custom, "forward");
    expect(device.log).toEqual(["update forward", "download", "dispose"]);
    expect(state.s.scale).toBe(448 / 8);
    expect(state.s.amaxHistory[1]).toBe(4);
  });

  it("releaseFp8Meta downloads and frees; a second holder is refused", () => {
    const state = createFp8Meta(recipe);
    const device = new FakeDevice("gpu", state);
    attachFp8DeviceState(state, device);
    expect(() => attachFp8DeviceState(state, new FakeDevice("other", state))).toThrow(/already held/);
    device.copy.dP.amaxHistory[0] = 0.5;
    expect(releaseFp8Meta(state).dP.amaxHistory[0]).toBe(0.5);
    expect(device.disposed).toBe(true);
    expect(releaseFp8Meta(state)).toBe(state); // nothing held: a no-op
  });
});

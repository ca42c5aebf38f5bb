import { ArgumentError, BackendError, hostTensor, makeParams } from "@te/core";
import { describe, expect, it } from "vitest";
import { createCudaBackend } from "../src/backends/cuda-backend.js";
import type { NativeBinding, NativeDeviceTensor } from "../src/binding.js";
import type { CudaTensor } from "../src/device.js";

/**
 * GPU-path argument errors without a GPU: a fake binding whose DeviceTensor only records its size,
 * device and disposal, and refuses allocations above `limitBytes` the way the addon reports out of
 * memory (code TE_ERR_OUT_OF_MEMORY). Each bad call must fail with a clear error and the next good
 * call must still run.
 */
function fakeDevice(limitBytes = Number.POSITIVE_INFINITY) {
  const live = new Set<FakeDeviceTensor>();
  const calls: string[] = [];
  // The error the next enqueued family call throws (the addon's shape: message and code), once.
  let failNext: { message: string; code: string } | undefined;
  class FakeDeviceTensor implements NativeDeviceTensor {
    disposed = false;
    zeroed = false;
    constructor(
      readonly byteLength: number,
      readonly device = 0,
    ) {
      if (byteLength > limitBytes)
        throw Object.assign(
          new Error(`DeviceTensor allocation: CUDA out of memory: asked for ${byteLength} bytes`),
          {
            code: "TE_ERR_OUT_OF_MEMORY",
          },
        );
      live.add(this);
    }
    upload(): void {}
    download<A extends ArrayBufferView>(dst: A): A {
      return dst;
    }
    zero(): NativeDeviceTensor {
      this.zeroed = true;
      return this;
    }
    dispose(): void {
      this.disposed = true;
      live.delete(this);
    }
  }
  const enqueue = (backend: string, what: string) => {
    const failure = failNext;
    failNext = undefined;
    if (failure) throw Object.assign(new Error(`${what}: ${failure.message}`), { code: failure.code });
    calls.push(`${backend} ${what}`);
  };
  const binding: NativeBinding = {
    explain: () => "",
    // The CUDA backends queue their kernels on the JS thread; the thread-pool forms are the CPU family's.
    forward: async (backend) => {
      calls.push(`${backend} forward on the thread pool`);
    },
    backward: async (backend) => {
      calls.push(`${backend} backward on the thread pool`);
    },
    enqueueForward: (backend) => enqueue(backend, "forward"),
    enqueueBackward: (backend) => enqueue(backend, "backward"),
    externalMemory: () => ({ liveBytes: 0, reportedBytes: 0 }),
    backends: () => "cuda.flash",
    deviceInfo: () => ({ cudaCompiled: true, devices: [] }),
    philox: (c) => c,
    DeviceTensor: FakeDeviceTensor,
    synchronize: async () => undefined,
  };
  // bytes: the fake allocation's size (the element count times 2 unless given).
  const tensor = (
    shape: number[],
    dtype: CudaTensor["dtype"] = "bf16",
    device = 0,
    bytes?: number,
  ): CudaTensor => {
    const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const n = shape.reduce((a, b) => a * b, 1);
    return { dtype, shape, strides, offset: 0, buffer: new FakeDeviceTensor(bytes ?? n * 2, device) };
  };
  const failNextCall = (message: string, code: string) => {
    failNext = { message, code };
  };
  return { binding, live, calls, tensor, failNextCall };
}

const p = makeParams({ b: 2, h: 4, d: 64, sq: 128, dtype: "bf16", device: "cuda" });
const shape = [2, 128, 4, 64];

async function expectArgumentError(call: Promise<unknown>, argument: string, message: RegExp) {
  const e = await call.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(ArgumentError.isInstance(e)).toBe(true);
  expect((e as ArgumentError).argument).toBe(argument);
  expect((e as Error).message).toMatch(message);
}

describe("cuda.* argument errors on the GPU path (fake device, CPU)", () => {
  it("a host tensor is an ArgumentError naming it and asking for a CUDA tensor; the next call runs", async () => {
    const dev = fakeDevice();
    const flash = createCudaBackend(dev.binding, "cuda.flash");
    const [q, k, v] = [dev.tensor(shape), dev.tensor(shape), dev.tensor(shape)];
    const host = hostTensor("bf16", shape) as unknown as CudaTensor;
    await expectArgumentError(flash.forward({ q, k: host, v }, p), "k", /a CUDA tensor.*got "a host tensor"/);
    await expectArgumentError(flash.forward({ q: host, k, v }, p), "q", /a CUDA tensor/);
    expect(dev.live.size).toBe(3);
    const fwd = await flash.forward({ q, k, v }, p);
    expect(dev.calls).toEqual(["cuda.flash forward"]);
    expect(fwd.o.shape).toEqual(shape);
  });

  it("disposed tensors, tensors on another device and wrong dtypes/shapes are refused before any allocation", async () => {
    const dev = fakeDevice();
    const flash = createCudaBackend(dev.binding, "cuda.flash");
    const [q, k, v] = [dev.tensor(shape), dev.tensor(shape), dev.tensor(shape)];
    const gone = dev.tensor(shape);
    gone.buffer.dispose();
    await expectArgumentError(flash.forward({ q, k, v: gone }, p), "v", /not disposed/);
    await expectArgumentError(
      flash.forward({ q, k: dev.tensor(shape, "bf16", 1), v }, p),
      "k.device",
      /device 0.*got 1/,
    );
    await expectArgumentError(
      flash.forward({ q: dev.tensor(shape, "bf16", 1), k, v }, p),
      "q.device",
      /device 0/,
    );
    await expectArgumentError(flash.forward({ q, k: dev.tensor(shape, "fp16"), v }, p), "k.dtype", /bf16/);
    await expectArgumentError(
      flash.forward({ q, k, v: dev.tensor([2, 128, 4, 32]) }, p),
      "v.shape",
      /2,128,4,64/,
    );
    const before = dev.live.size;
    const fwd = await flash.forward({ q, k, v }, p);
    expect(dev.live.size).toBe(before + 2);
    const dO = dev.tensor(shape);
    const grads = await flash.backward(fwd.saved, dO, p);
    expect(grads.dv.shape).toEqual(shape);
    await expectArgumentError(
      flash.backward(fwd.saved, dev.tensor(shape, "bf16", 1), p),
      "dO.device",
      /device 0/,
    );
    expect(dev.calls).toEqual(["cuda.flash forward", "cuda.flash backward"]);
  });

  it("out of memory while allocating outputs is a BackendError with the code; nothing leaks; a smaller call runs", async () => {
    // The big call's output o needs 2*4096*4*64 bf16 = 4 MiB, above the fake 1 MiB limit.
    const dev = fakeDevice(1 << 20);
    const unfused = createCudaBackend(dev.binding, "cuda.unfused");
    const big = makeParams({ b: 2, h: 4, d: 64, sq: 4096, dtype: "bf16", device: "cuda" });
    const bigShape = [2, 4096, 4, 64];
    const [q, k, v] = [0, 1, 2].map(() => dev.tensor(bigShape, "bf16", 0, 16));
    const before = dev.live.size;
    const e = await unfused.forward({ q, k, v }, big).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(BackendError);
    expect((e as BackendError).code).toBe("TE_ERR_OUT_OF_MEMORY");
    expect((e as Error).message).toMatch(
      /\[cuda\.unfused\] output allocation: .*out of memory: asked for \d+ bytes/,
    );
    expect(dev.live.size).toBe(before);
    const [sq, sk, sv] = [dev.tensor(shape), dev.tensor(shape), dev.tensor(shape)];
    const fwd = await unfused.forward({ q: sq, k: sk, v: sv }, p);
    expect(fwd.lse.shape).toEqual([2, 4, 128]);
  });

  it("a family's failure is a rejection (BackendError with the code, or ArgumentError), outputs are freed, the next call runs", async () => {
    const dev = fakeDevice();
    const flash = createCudaBackend(dev.binding, "cuda.flash");
    const [q, k, v, dO] = [dev.tensor(shape), dev.tensor(shape), dev.tensor(shape), dev.tensor(shape)];
    const before = dev.live.size;
    dev.failNextCall("cuda.flash forward: an illegal memory access was encountered", "TE_ERR_CUDA");
    const call = flash.forward({ q, k, v }, p);
    expect(call).toBeInstanceOf(Promise);
    const e = await call.catch((err: unknown) => err);
    expect(e).toBeInstanceOf(BackendError);
    expect((e as BackendError).code).toBe("TE_ERR_CUDA");
    expect((e as Error).message).toMatch(/illegal memory access/);
    expect(dev.live.size).toBe(before);
    const fwd = await flash.forward({ q, k, v }, p);
    dev.failNextCall("dq.s: expected an integer", "TE_ERR_INVALID_ARGUMENT");
    const bad = await flash.backward(fwd.saved, dO, p).catch((err: unknown) => err);
    expect(ArgumentError.isInstance(bad)).toBe(true);
    expect(dev.live.size).toBe(before + 2);
    const grads = await flash.backward(fwd.saved, dO, p);
    expect(grads.dq.shape).toEqual(shape);
    expect(dev.calls).toEqual(["cuda.flash forward", "cuda.flash backward"]);
  });

  it("thd outputs are zeroed on the device, not by uploading host zeros", async () => {
    const dev = fakeDevice();
    const flash = createCudaBackend(dev.binding, "cuda.flash");
    const thd = makeParams({ b: 2, h: 4, d: 64, sq: 128, dtype: "bf16", device: "cuda", qkvFormat: "thd" });
    const t = () => dev.tensor([256, 4, 64]);
    const lens = Int32Array.from([0, 100, 228]);
    const fwd = await flash.forward(
      {
        q: t(),
        k: t(),
        v: t(),
        cuSeqlensQ: lens,
        cuSeqlensKv: lens,
        cuSeqlensQPadded: Int32Array.from([0, 128, 256]),
        cuSeqlensKvPadded: Int32Array.from([0, 128, 256]),
      },
      thd,
    );
    expect((fwd.o.buffer as unknown as { zeroed: boolean }).zeroed).toBe(true);
  });
});

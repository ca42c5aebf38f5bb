/**
 * The shape of te_native.node's exports (src/addon/addon.cpp). Views are element strides of a
 * [batch, seq, head, channel] tensor over a typed array or DeviceTensor, as te_view in te_attention.h.
 */
export interface NativeView {
  readonly data: ArrayBufferView | NativeDeviceTensor;
  readonly offset: number;
  readonly b: number;
  readonly s: number;
  readonly h: number;
  readonly c: number;
}

/** te_attn_desc with enum values as numbers (te_format, te_dtype, te_bias_type, te_softmax_type). */
export interface NativeDesc {
  format: number;
  dtype: number;
  b: number;
  h: number;
  hg: number;
  d: number;
  dv: number;
  sq: number;
  skv: number;
  tq: number;
  tkv: number;
  causal: number;
  bottomRight: number;
  windowLeft: number;
  windowRight: number;
  arbitraryMask: number;
  biasType: number;
  biasDtype: number;
  biasB: number;
  biasH: number;
  alibiPerBatch: number;
  softmaxType: number;
  scale: number;
  dropout: number;
  dropoutThreshold: number;
  dropoutSeed: number;
  dropoutOffset: number;
  deterministic: number;
}

export interface NativeForwardArgs {
  q: NativeView;
  k: NativeView;
  v: NativeView;
  o: NativeView;
  lse: Float32Array;
  cuSeqlensQ?: Int32Array;
  cuSeqlensKv?: Int32Array;
  cuSeqlensQPadded?: Int32Array;
  cuSeqlensKvPadded?: Int32Array;
  bias?: { data: ArrayBufferView; offset: number; sb: number; sh: number; ss: number };
  alibiSlopes?: Float32Array;
  mask?: Uint8Array;
  maskB?: number;
  maskH?: number;
  softmaxOffset?: Float32Array;
  threads?: number;
}

export interface NativeBackwardArgs extends NativeForwardArgs {
  dO: NativeView;
  dq: NativeView;
  dk: NativeView;
  dv: NativeView;
  dbias?: ArrayBufferView;
  dSoftmaxOffset?: Float32Array;
}

export interface NativeDeviceTensor {
  readonly byteLength: number;
  readonly disposed: boolean;
  readonly device: number;
  upload(src: ArrayBufferView): void;
  download<A extends ArrayBufferView>(dst: A): A;
  /** Sets every byte to 0 on the device, ordered before later work (returns this). */
  zero(): NativeDeviceTensor;
  dispose(): void;
}

export interface NativeDeviceTimer {
  start(): void;
  stop(): void;
  elapsedMs(): number;
  dispose(): void;
}

export interface NativeDeviceInfo {
  readonly cudaCompiled: boolean;
  readonly devices: readonly {
    readonly index: number;
    readonly name: string;
    readonly arch: number;
    readonly totalMemory: number;
    readonly freeMemory: number;
  }[];
}

export interface NativeBinding {
  /** "" when the kernel family can run desc, else why not. */
  explain(backend: string, desc: NativeDesc): string;
  forward(backend: string, desc: NativeDesc, args: NativeForwardArgs): Promise<void>;
  backward(backend: string, desc: NativeDesc, args: NativeBackwardArgs): Promise<void>;
  /**
   * forward/backward on the calling thread, returning when the family has returned (throws its error):
   * for the CUDA families that is once the kernels are queued on the device, sooner than a round trip
   * through the thread pool that forward/backward take (which the CPU family needs: it computes).
   */
  enqueueForward(backend: string, desc: NativeDesc, args: NativeForwardArgs): void;
  enqueueBackward(backend: string, desc: NativeDesc, args: NativeBackwardArgs): void;
  /** Registered kernel families, comma separated. */
  backends(): string;
  deviceInfo(): NativeDeviceInfo;
  philox(counter: Uint32Array, key: Uint32Array): Uint32Array;
  DeviceTensor: new (byteLength: number, device?: number) => NativeDeviceTensor;
  /**
   * Two CUDA timing events on the device's default stream (src/addon/device_timer.h): start()/stop()
   * record, elapsedMs() reads the device time between them once the device has finished (an error
   * before that, or after dispose()). Optional: addons built before it have none.
   */
  DeviceTimer?: new (
    device?: number,
  ) => NativeDeviceTimer;
  /** Resolves once every piece of work queued on the device has finished (off the JS thread). */
  synchronize(device?: number): Promise<void>;
  /**
   * The device bytes live DeviceTensors hold and the amount V8 is told of them, a capacity that
   * moves in steps so that loops which allocate and dispose do not start a GC each time
   * (src/addon/external_memory.h).
   */
  externalMemory(): { readonly liveBytes: number; readonly reportedBytes: number };
}

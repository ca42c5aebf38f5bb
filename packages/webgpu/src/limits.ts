/**
 * The device limits eligibility depends on: those of the device in use, or WebGPU's guaranteed defaults while
 * no device was requested yet (a later device can only allow more).
 */
import { currentDevice, deviceProblem } from "./device.js";

export interface DeviceFacts {
  /** Why no device can be had, or null. */
  readonly problem: string | null;
  readonly workgroupBytes: number;
  readonly bindingBytes: number;
  /** Whether the limits are a device's (true) or WebGPU's defaults because no device was requested yet. */
  readonly fromDevice: boolean;
}

export const WEBGPU_DEFAULT_LIMITS = { workgroupBytes: 16384, bindingBytes: 134217728 } as const;

export function deviceFacts(): DeviceFacts {
  const device = currentDevice();
  if (!device) return { problem: deviceProblem(), ...WEBGPU_DEFAULT_LIMITS, fromDevice: false };
  return {
    problem: null,
    fromDevice: true,
    workgroupBytes: device.limits.maxComputeWorkgroupStorageSize,
    bindingBytes: device.limits.maxStorageBufferBindingSize,
  };
}

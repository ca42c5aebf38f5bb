import type { RgbImage } from "./png.js";

type Rgb = readonly [number, number, number];

class Canvas implements RgbImage {
  readonly pixels: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.pixels = new Uint8Array(width * height * 3).fill(255);
  }
  set(x: number, y: number, c: Rgb): void {
    const xi = Math.round(x);
    const yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= this.width || yi >= this.height) return;
    this.pixels.set(c, (yi * this.width + xi) * 3);
  }
  /** A straight segment, sampled densely enough to leave no gaps. */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thickness = 1): void {
    const steps = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0)) * 2));
    for (let s = 0; s <= steps; s++) {
      const x = x0 + ((x1 - x0) * s) / steps;
      const y = y0 + ((y1 - y0) * s) / steps;
      for (let dx = 0; dx < thickness; dx++)
        for (let dy = 0; dy < thickness; dy++) this.set(x + dx, y + dy, c);
    }
  }
}

const AXIS: Rgb = [40, 40, 40];
const GRID: Rgb = [225, 225, 225];
const RAW: Rgb = [170, 200, 240];
const SMOOTH: Rgb = [20, 90, 200];

/** Exponential moving average of log(loss), to show the trend under the minibatch noise on the log scale drawn. */
function smooth(values: readonly number[], alpha = 0.15): number[] {
  const out: number[] = [];
  let m = Math.log(values[0] ?? 1);
  for (const v of values) {
    m = alpha * Math.log(Math.max(v, Number.MIN_VALUE)) + (1 - alpha) * m;
    out.push(Math.exp(m));
  }
  return out;
}

/**
 * A loss curve: loss per step on a log scale (light: raw, dark: smoothed), with horizontal grid lines
 * at each power of ten. No text (the PNG stays dependency-free); the caller prints the numbers.
 */
export function plotLoss(losses: readonly number[], width = 640, height = 360): RgbImage {
  const canvas = new Canvas(width, height);
  const margin = 20;
  const positive = losses.filter((l) => l > 0 && Number.isFinite(l));
  const lo = Math.floor(Math.log10(Math.min(...positive)));
  const hi = Math.ceil(Math.log10(Math.max(...positive)));
  const span = Math.max(hi - lo, 1);
  const xOf = (i: number) => margin + ((width - 2 * margin) * i) / Math.max(losses.length - 1, 1);
  const yOf = (loss: number) =>
    height - margin - ((height - 2 * margin) * (Math.log10(Math.max(loss, 10 ** lo)) - lo)) / span;
  for (let decade = lo; decade <= lo + span; decade++) {
    canvas.line(margin, yOf(10 ** decade), width - margin, yOf(10 ** decade), GRID);
  }
  canvas.line(margin, margin, margin, height - margin, AXIS);
  canvas.line(margin, height - margin, width - margin, height - margin, AXIS);
  const trend = smooth(losses);
  for (let i = 1; i < losses.length; i++)
    canvas.line(xOf(i - 1), yOf(losses[i - 1]), xOf(i), yOf(losses[i]), RAW);
  for (let i = 1; i < trend.length; i++)
    canvas.line(xOf(i - 1), yOf(trend[i - 1]), xOf(i), yOf(trend[i]), SMOOTH, 2);
  return canvas;
}

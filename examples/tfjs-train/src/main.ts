import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { plotLoss } from "./loss-plot.js";
import { encodePng } from "./png.js";
import { progressPrinter } from "./progress.js";
import { DEFAULT_MODEL, TARGET_ACCURACY, trainReversal } from "./train.js";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "200" },
    batch: { type: "string", default: "64" },
    lr: { type: "string", default: "0.01" },
    backend: { type: "string", default: "cpu" },
    out: { type: "string", default: "loss.png" },
  },
});

await tf.setBackend(values.backend);
const steps = Number(values.steps);
console.log(
  `Sequence reversal (length ${DEFAULT_MODEL.seqLen}, vocabulary ${DEFAULT_MODEL.vocab}) with a ${DEFAULT_MODEL.layers}-layer, ` +
    `${DEFAULT_MODEL.heads}-head transformer on tfjs's ${tf.getBackend()} backend, ${steps} steps`,
);
const result = trainReversal({
  steps,
  batch: Number(values.batch),
  learningRate: Number(values.lr),
  model: DEFAULT_MODEL,
  onStep: progressPrinter(steps),
});
writeFileSync(values.out, encodePng(plotLoss(result.losses)));
const verdict = result.accuracy >= TARGET_ACCURACY ? "reached" : "MISSED";
console.log(`attention backends: ${result.attentionBackends.join(", ")}`);
console.log(
  `final loss ${result.losses[result.losses.length - 1].toFixed(4)}, ${result.seconds.toFixed(1)} s`,
);
console.log(
  `held-out token accuracy ${(100 * result.accuracy).toFixed(2)}% (${verdict} the ${100 * TARGET_ACCURACY}% target)`,
);
console.log(`loss curve written to ${values.out}`);
process.exitCode = result.accuracy >= TARGET_ACCURACY ? 0 : 1;

import * as tf from "@tensorflow/tfjs";
import { type ModelConfig, TinyTransformer } from "./model.js";
import { mulberry32, reversalBatch } from "./reversal-task.js";

export interface TrainOptions {
  readonly steps: number;
  readonly batch: number;
  readonly learningRate: number;
  readonly model: ModelConfig;
  /** Called after every step with the step's training loss. */
  readonly onStep?: (step: number, loss: number) => void;
}

export interface TrainResult {
  readonly losses: number[];
  /** Token accuracy on fresh sequences the model never saw. */
  readonly accuracy: number;
  readonly seconds: number;
  readonly attentionBackends: (string | null)[];
}

/** The token accuracy on held-out sequences this example promises. */
export const TARGET_ACCURACY = 0.95;

export const DEFAULT_MODEL: ModelConfig = {
  vocab: 10,
  seqLen: 8,
  dModel: 32,
  heads: 4,
  layers: 2,
  mlpHidden: 64,
  seed: 7,
};

function crossEntropy(model: TinyTransformer, inputs: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  const logits = model.logits(inputs);
  const labels = tf.oneHot(tf.reshape(targets, [-1]), model.config.vocab);
  return tf.losses.softmaxCrossEntropy(labels, tf.reshape(logits, [-1, model.config.vocab])) as tf.Scalar;
}

/** Fraction of positions whose most likely token is the target. */
export function tokenAccuracy(model: TinyTransformer, random: () => number, sequences = 512): number {
  const { inputs, targets } = reversalBatch(random, sequences, model.config.seqLen, model.config.vocab);
  const accuracy = tf.tidy(
    () => tf.mean(tf.cast(tf.equal(tf.argMax(model.logits(inputs), -1), targets), "float32")).dataSync()[0],
  );
  inputs.dispose();
  targets.dispose();
  return accuracy;
}

/** Trains the tiny transformer on sequence reversal with Adam; returns the losses and held-out accuracy. */
export function trainReversal(options: TrainOptions): TrainResult {
  const started = performance.now();
  const model = new TinyTransformer(options.model);
  const optimizer = tf.train.adam(options.learningRate);
  const random = mulberry32(options.model.seed);
  const losses: number[] = [];
  for (let step = 0; step < options.steps; step++) {
    const { inputs, targets } = reversalBatch(
      random,
      options.batch,
      options.model.seqLen,
      options.model.vocab,
    );
    const loss = optimizer.minimize(() => crossEntropy(model, inputs, targets), true, model.variables);
    const value = loss!.dataSync()[0];
    tf.dispose([loss!, inputs, targets]);
    losses.push(value);
    options.onStep?.(step, value);
  }
  const accuracy = tokenAccuracy(model, mulberry32(options.model.seed + 1000));
  const result = {
    losses,
    accuracy,
    seconds: (performance.now() - started) / 1000,
    attentionBackends: model.attentionBackends,
  };
  model.dispose();
  optimizer.dispose();
  return result;
}

import { DotProductAttention } from "@te/tfjs";
import * as tf from "@tensorflow/tfjs";

export interface ModelConfig {
  readonly vocab: number;
  readonly seqLen: number;
  readonly dModel: number;
  readonly heads: number;
  readonly layers: number;
  readonly mlpHidden: number;
  readonly seed: number;
}

/** A weight initialised N(0, 1/fan_in), seeded for reproducible runs. */
function weight(shape: [number, number], seed: number, std = 1 / Math.sqrt(shape[0])): tf.Variable {
  // tidy frees the initial value; the variable holds its own copy.
  return tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, std, "float32", seed)));
}
const zeros = (n: number) => tf.tidy(() => tf.variable(tf.zeros([n])));
const ones = (n: number) => tf.tidy(() => tf.variable(tf.ones([n])));

function layerNorm(x: tf.Tensor, gain: tf.Variable, bias: tf.Variable): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), gain), bias);
}

/** x [..., in] · w [in, out] + b; flattened to 2-D because tfjs's batched matMul gradient does not reduce a broadcast weight. */
function dense(x: tf.Tensor, w: tf.Variable, b?: tf.Variable): tf.Tensor {
  const [inputs, outputs] = w.shape as [number, number];
  const product = tf.matMul(tf.reshape(x, [-1, inputs]), w);
  return tf.reshape(b ? tf.add(product, b) : product, [...x.shape.slice(0, -1), outputs]);
}

/** A pre-norm transformer block whose attention is @te/tfjs's DotProductAttention (bshd, no mask). */
class Block {
  readonly attention: DotProductAttention;
  private readonly weights: Record<string, tf.Variable>;

  constructor(
    private readonly c: ModelConfig,
    seed: number,
  ) {
    const d = c.dModel;
    this.weights = {
      ln1g: ones(d),
      ln1b: zeros(d),
      wq: weight([d, d], seed),
      wk: weight([d, d], seed + 4),
      wv: weight([d, d], seed + 5),
      wo: weight([d, d], seed + 1),
      bo: zeros(d),
      ln2g: ones(d),
      ln2b: zeros(d),
      w1: weight([d, c.mlpHidden], seed + 2),
      b1: zeros(c.mlpHidden),
      w2: weight([c.mlpHidden, d], seed + 3),
      b2: zeros(d),
    };
    this.attention = new DotProductAttention({
      numAttentionHeads: c.heads,
      kvChannels: d / c.heads,
      qkvFormat: "bshd",
      attnMaskType: "no_mask",
    });
  }

  get variables(): tf.Variable[] {
    return [...Object.values(this.weights), ...this.attention.trainableWeights];
  }

  apply(x: tf.Tensor3D): tf.Tensor3D {
    const w = this.weights;
    const [b, s, d] = x.shape;
    const headShape = [b, s, this.c.heads, d / this.c.heads];
    const normed = layerNorm(x, w.ln1g, w.ln1b);
    const [q, k, v] = [w.wq, w.wk, w.wv].map((wx) => tf.reshape(dense(normed, wx), headShape));
    const attended = this.attention.apply(q, k, v);
    const h = tf.add(x, dense(attended, w.wo, w.bo));
    const mlp = dense(tf.relu(dense(layerNorm(h, w.ln2g, w.ln2b), w.w1, w.b1)), w.w2, w.b2);
    return tf.add(h, mlp) as tf.Tensor3D;
  }

  dispose(): void {
    for (const v of Object.values(this.weights)) v.dispose();
    this.attention.dispose();
  }
}

/** Token + learnt position embeddings, `layers` blocks, a final norm and a linear read-out to the vocabulary. */
export class TinyTransformer {
  private readonly embedding: tf.Variable;
  private readonly positions: tf.Variable;
  private readonly blocks: Block[];
  private readonly lnGain: tf.Variable;
  private readonly lnBias: tf.Variable;
  private readonly readout: tf.Variable;
  private readonly readoutBias: tf.Variable;

  constructor(readonly config: ModelConfig) {
    const { vocab, seqLen, dModel, layers, seed } = config;
    this.embedding = weight([vocab, dModel], seed, 1);
    this.positions = weight([seqLen, dModel], seed + 1, 1);
    this.blocks = Array.from({ length: layers }, (_, i) => new Block(config, seed + 10 * (i + 1)));
    this.lnGain = ones(dModel);
    this.lnBias = zeros(dModel);
    this.readout = weight([dModel, vocab], seed + 2);
    this.readoutBias = zeros(vocab);
  }

  get variables(): tf.Variable[] {
    return [
      this.embedding,
      this.positions,
      ...this.blocks.flatMap((b) => b.variables),
      this.lnGain,
      this.lnBias,
      this.readout,
      this.readoutBias,
    ];
  }

  /** The attention backend each block ran last (selection is per call). */
  get attentionBackends(): (string | null)[] {
    return this.blocks.map((b) => b.attention.lastBackend);
  }

  /** tokens int32 [b, s] -> logits [b, s, vocab]. */
  logits(tokens: tf.Tensor2D): tf.Tensor3D {
    // one-hot · embedding rather than gather: gather's gradient (a segment sum) is slow on tfjs's cpu backend.
    const oneHot = tf.oneHot(tokens, this.config.vocab).asType("float32");
    let x = tf.add(dense(oneHot, this.embedding), this.positions) as tf.Tensor3D;
    for (const block of this.blocks) x = block.apply(x);
    return dense(layerNorm(x, this.lnGain, this.lnBias), this.readout, this.readoutBias) as tf.Tensor3D;
  }

  dispose(): void {
    for (const v of [
      this.embedding,
      this.positions,
      this.lnGain,
      this.lnBias,
      this.readout,
      this.readoutBias,
    ])
      v.dispose();
    for (const b of this.blocks) b.dispose();
  }
}

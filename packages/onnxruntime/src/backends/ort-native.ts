import {
  type AttentionBackend,
  type AttentionInputs,
  type AttentionParams,
  BackendError,
  type Eligibility,
  evaluateRules,
  type ForwardResult,
  type Gradients,
  type SavedForBackward,
  teRank,
} from "@te/core";
import { asType, attentionFeeds, type Feeds } from "../feeds.js";
import {
  type AttentionGraphConfig,
  configKey,
  graphConfigOf,
  GRAPH_NAMES as N,
} from "../graph/attention-config.js";
import { buildBackwardGraph } from "../graph/backward-graph.js";
import { buildForwardGraph } from "../graph/forward-graph.js";
import { modelBytes } from "../graph/model-bytes.js";
import { ortModule } from "../runtime/ort-runtime.js";
import { SessionCache } from "../runtime/session-cache.js";
import { type OrtTensor, ortTensors } from "../tensors.js";
import { ORT_NATIVE_RULES } from "./ort-native-rules.js";
import { runGraph } from "./run-graph.js";

const forwardSessions = new SessionCache();
const backwardSessions = new SessionCache();

/** What backward needs: the forward's feeds and results (ORT tensors are immutable, so no copies). */
class SavedGraphInputs implements SavedForBackward {
  constructor(
    readonly config: AttentionGraphConfig,
    readonly feeds: Feeds,
    readonly o: OrtTensor,
    readonly lse: OrtTensor,
  ) {}
  release(): void {
    // Nothing is held outside the garbage-collected tensors.
  }
}

/**
 * ort.native: attention as a framework-native ONNX graph (MatMul, Where, Exp, ReduceSum, ...), TE's
 * UnfusedDotProductAttention on ONNX Runtime. Backward is a second ONNX graph (ORT inference
 * sessions have no autograd) that recomputes the probabilities from the saved log-sum-exp.
 */
export const ortNative: AttentionBackend<OrtTensor> = {
  specificationVersion: "v1",
  id: "ort.native",
  family: "UnfusedDotProductAttention",
  tensors: ortTensors,
  dtypes: ["fp32", "fp16"],
  rank: (context) => teRank("UnfusedDotProductAttention", context.cudaArch),
  explain(p: AttentionParams): Eligibility {
    return evaluateRules(ORT_NATIVE_RULES, p, undefined);
  },
  async forward(inputs: AttentionInputs<OrtTensor>, p: AttentionParams): Promise<ForwardResult<OrtTensor>> {
    const c = graphConfigOf(p, inputs.attnMask?.shape);
    const feeds = attentionFeeds((await ortModule()).Tensor, inputs, c);
    const build = () => modelBytes("te_attention_forward", c, buildForwardGraph);
    const out = await runGraph(this.id, forwardSessions, configKey(c), build, feeds);
    return { o: out[N.o], lse: out[N.lse], saved: new SavedGraphInputs(c, feeds, out[N.o], out[N.lse]) };
  },
  async backward(saved: SavedForBackward, dO: OrtTensor, p: AttentionParams): Promise<Gradients<OrtTensor>> {
    if (!(saved instanceof SavedGraphInputs)) {
      throw new BackendError(this.id, "backward was given state saved by another backend's forward");
    }
    const c = { ...saved.config, biasGrad: p.biasRequiresGrad };
    const storage = c.dtype === "fp16" ? "float16" : "float32";
    const feeds: Feeds = {
      ...saved.feeds,
      [N.o]: saved.o,
      [N.lse]: saved.lse,
      [N.dO]: asType((await ortModule()).Tensor, dO, storage),
    };
    const build = () => modelBytes("te_attention_backward", c, buildBackwardGraph);
    const out = await runGraph(this.id, backwardSessions, configKey(c), build, feeds);
    return {
      dq: out[N.dq],
      dk: out[N.dk],
      dv: out[N.dv],
      ...(out[N.dbias] ? { dbias: out[N.dbias] } : {}),
      ...(out[N.dSoftmaxOffset] ? { dSoftmaxOffset: out[N.dSoftmaxOffset] } : {}),
    };
  },
};

import {
  type AttentionBackend,
  type AttentionInputs,
  type AttentionParams,
  BackendError,
  type Eligibility,
  evaluateRules,
  type ForwardResult,
  type Gradients,
  teRank,
} from "@te/core";
import { attentionFeeds } from "../feeds.js";
import { configKey, graphConfigOf, GRAPH_NAMES as N } from "../graph/attention-config.js";
import { FUSED_GRAPHS } from "../graph/fused-graph.js";
import { modelBytes } from "../graph/model-bytes.js";
import { ortModule } from "../runtime/ort-runtime.js";
import { SessionCache } from "../runtime/session-cache.js";
import { type OrtTensor, ortTensors } from "../tensors.js";
import { fusedOpOf, ORT_FUSED_RULES } from "./ort-fused-rules.js";
import { runGraph } from "./run-graph.js";

const sessions = new SessionCache();

/** Forward-only: nothing to keep. */
const NOTHING_SAVED = { release(): void {} };

/**
 * ort.fused: ONNX Runtime's own fused attention kernels (ONNX Attention, com.microsoft
 * GroupQueryAttention), TE's FusedAttention family on ORT. Inference only.
 */
export const ortFused: AttentionBackend<OrtTensor> = {
  specificationVersion: "v1",
  id: "ort.fused",
  family: "FusedAttention",
  tensors: ortTensors,
  dtypes: ["fp32", "fp16"],
  rank: (context) => teRank("FusedAttention", context.cudaArch),
  explain(p: AttentionParams): Eligibility {
    const verdict = evaluateRules(ORT_FUSED_RULES, p, undefined);
    return verdict.ok ? { ok: true, note: `ORT op ${fusedOpOf(p)}` } : verdict;
  },
  async forward(inputs: AttentionInputs<OrtTensor>, p: AttentionParams): Promise<ForwardResult<OrtTensor>> {
    const op = fusedOpOf(p);
    const c = graphConfigOf(p, inputs.attnMask?.shape);
    const graph = FUSED_GRAPHS[op];
    const feeds = attentionFeeds((await ortModule()).Tensor, inputs, c);
    const build = () => modelBytes(`te_attention_${op}`, c, graph.build, graph.opsets);
    const out = await runGraph(this.id, sessions, `${op}|${configKey(c)}`, build, feeds);
    return { o: out[N.o], lse: out[N.lse], saved: NOTHING_SAVED };
  },
  async backward(): Promise<Gradients<OrtTensor>> {
    throw new BackendError(
      "ort.fused",
      "has no backward: ORT's fused attention ops are inference only",
      "TE_UNSUPPORTED",
    );
  },
};

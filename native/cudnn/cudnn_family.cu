// The "cuda.cudnn" kernel family of the te C API (TE's FusedAttention F16 path): the reasons a call
// cannot run, and forward/backward through cuDNN's graph API with plans cached per configuration
// (per thread and device, each with its own cuDNN handle). Registered when the library loads.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../cuda/family/desc_args.h"
#include "cudnn_library.h"
#include "plan_cache.h"
#include "row_fixup.h"
#include "sdpa_graph.h"
#include "status_internal.h"
#include "te/te_attention.h"
#include "workspace_cache.h"

namespace te::cudnn {
namespace {

using cuda_family::refuse;

// Reasons that depend on the descriptor alone.
std::string why_not(const te_attn_desc* d) {
  std::string load_error;
  if (loadLibrary(&load_error) == nullptr) return "cuda.cudnn: " + load_error;
  if (d->dtype != TE_F16 && d->dtype != TE_BF16) return "cuda.cudnn runs fp16 and bf16 only (FP8 is not wired)";
  if (d->arbitrary_mask) return "cuda.cudnn has no arbitrary-mask graph";
  if (d->bias_type == TE_PRE_SCALE_BIAS) return "cuda.cudnn has no pre_scale_bias graph (post_scale_bias, alibi)";
  if (d->bias_type == TE_POST_SCALE_BIAS && d->bias_dtype != d->dtype)
    return "cuda.cudnn needs the bias in the dtype of q, k and v";
  const bool bias_extents_ok = (d->bias_b == 1 || d->bias_b == d->b) && (d->bias_h == 1 || d->bias_h == d->h);
  if (d->bias_type == TE_POST_SCALE_BIAS && !bias_extents_ok)
    return "cuda.cudnn: bias extents must be 1 or b, 1 or h";
  if (d->softmax_type != TE_SOFTMAX_VANILLA && d->softmax_type != TE_SOFTMAX_OFF_BY_ONE &&
      d->softmax_type != TE_SOFTMAX_LEARNABLE)
    return "softmax_type: vanilla, off_by_one or learnable expected";
  if (!(d->dropout >= 0 && d->dropout < 1)) return "dropout: a probability in [0, 1) expected";
  if (d->hg <= 0 || d->h % d->hg != 0) return "h must be a multiple of hg";
  if (d->d % 8 != 0 || d->dv % 8 != 0 || d->d > 256 || d->dv > 256)
    return "cuda.cudnn: cuDNN's fused attention needs head dims that are multiples of 8, at most 256";
  return "";
}

te_status explain(const te_attn_desc* d, char* reason, size_t n) {
  const std::string why = why_not(d);
  if (!why.empty()) return refuse(reason, n, why);
  return TE_OK;
}

// The variant pack last executed with a plan: reused while a call names the same tensors, host values,
// and workspace (te bench and training loops get the same pooled addresses call after call), so such a
// call neither creates nor finalizes a descriptor.
struct LastPack {
  std::vector<int64_t> uids;
  std::vector<void*> pointers;
  std::vector<uint32_t> host_values;
  void* workspace = nullptr;
  std::unique_ptr<Descriptor> descriptor;
};

// cuda.cudnn keeps its workspace and last variant packs beside each device's handle and plans.
struct FamilyExtra {
  WorkspaceCache workspace;
  std::map<const ExecutionPlan*, LastPack> packs;
};
using FamilyState = DeviceState<FamilyExtra>;

const ExecutionPlan& planFor(const Library& lib, FamilyState& state, const SdpaConfig& c, bool backward) {
  return planFor(state, c.key(backward), [&](abi::Handle handle) {
    return backward ? buildBackwardPlan(lib, handle, c) : buildForwardPlan(lib, handle, c);
  });
}

// "" or why a tensor cannot be handed to cuDNN as is.
std::string checkView(const char* name, const void* data, int64_t b, int64_t s, int64_t h, int64_t c) {
  if (c != 1) return std::string(name) + ": cuda.cudnn needs a contiguous head dim (channel stride 1)";
  if (reinterpret_cast<uintptr_t>(data) % 16 != 0 || b % 8 != 0 || s % 8 != 0 || h % 8 != 0)
    return std::string(name) + ": cuda.cudnn needs 16-byte aligned data and strides that are multiples of 8";
  return cuda_family::device_pointer(name, data);
}

// The [batch, head, seq] strides cuDNN is given; thd tensors (batch stride 0, entries at ragged offsets)
// get those of a packed [b, s, h, c] view of `s` rows per entry.
template <typename View>
BhsStrides bhs(const View& v, const SdpaConfig& c, int64_t s) {
  return {c.ragged ? s * v.s : v.b, v.h, v.s};
}

// The bias as cuDNN reads it: [bias_b, bias_h, sq, skv] with the caller's strides (a broadcast dim
// gets the packed stride, which cuDNN never steps over).
std::string biasOf(const te_attn_desc* d, const te_attn_fwd_args* f, SdpaConfig* c) {
  std::string bad = cuda_family::device_pointer("bias", f->bias);
  if (!bad.empty()) return bad;
  if (f->bias == nullptr) return "bias: a device tensor is required for post_scale_bias";
  c->bias = true, c->bias_type = c->io, c->bias_b = d->bias_b, c->bias_h = d->bias_h;
  c->bias_strides = {c->bias_b == 1 ? c->bias_h * f->bias_ss * d->sq : f->bias_sb,
                     c->bias_h == 1 ? f->bias_ss * d->sq : f->bias_sh, f->bias_ss};
  const int64_t last = (c->bias_b - 1) * c->bias_strides.b + (c->bias_h - 1) * c->bias_strides.h +
                       (d->sq - 1) * f->bias_ss + d->skv;
  if (f->bias_numel < last) return "bias: the buffer is smaller than [bias_b, bias_h, sq, skv] with its strides";
  if (reinterpret_cast<uintptr_t>(f->bias) % 16 != 0 || c->bias_strides.b % 8 != 0 || c->bias_strides.h % 8 != 0 ||
      f->bias_ss % 8 != 0)
    return "bias: cuda.cudnn needs 16-byte aligned data and strides that are multiples of 8";
  return "";
}

std::string configOf(const te_attn_desc* d, const te_attn_fwd_args* f, SdpaConfig* c) {
  const std::string why = why_not(d);
  if (!why.empty()) return why;
  for (auto [name, v] : {std::pair<const char*, const te_view*>{"q", &f->q}, {"k", &f->k}, {"v", &f->v}}) {
    std::string bad = checkView(name, v->data, v->b, v->s, v->h, v->c);
    if (!bad.empty()) return bad;
  }
  std::string bad = checkView("o", f->o.data, f->o.b, f->o.s, f->o.h, f->o.c);
  if (bad.empty()) bad = cuda_family::device_pointer("lse", f->lse);
  if (bad.empty()) bad = cuda_family::device_pointer("cu_seqlens_q", f->cu_seqlens_q);
  if (bad.empty()) bad = cuda_family::device_pointer("cu_seqlens_kv", f->cu_seqlens_kv);
  if (!bad.empty()) return bad;
  if (f->lse == nullptr || f->lse_numel < int64_t(d->b) * d->h * d->sq)
    return "lse: [b, h, sq] fp32 expected";
  c->io = d->dtype == TE_F16 ? abi::CUDNN_DATA_HALF : abi::CUDNN_DATA_BFLOAT16;
  c->b = d->b, c->h = d->h, c->hg = d->hg, c->d = d->d, c->dv = d->dv, c->sq = d->sq, c->skv = d->skv;
  c->causal = d->causal != 0 || d->window_right == 0, c->bottom_right = d->bottom_right != 0;
  c->window_left = d->window_left, c->window_right = c->causal ? 0 : d->window_right;
  c->padded = f->cu_seqlens_q != nullptr || f->cu_seqlens_kv != nullptr;
  c->ragged = d->format == TE_THD;
  if (c->ragged && (f->cu_seqlens_q == nullptr || f->cu_seqlens_kv == nullptr))
    return "cuda.cudnn: thd needs cu_seqlens_q and cu_seqlens_kv";
  if (c->ragged) bad = cuda_family::device_pointer("cu_seqlens_q_padded", f->cu_seqlens_q_padded);
  if (bad.empty() && c->ragged) bad = cuda_family::device_pointer("cu_seqlens_kv_padded", f->cu_seqlens_kv_padded);
  if (!bad.empty()) return bad;
  c->deterministic = d->deterministic != 0;
  c->dropout = d->dropout;
  c->sink = d->softmax_type != TE_SOFTMAX_VANILLA;
  if (d->softmax_type == TE_SOFTMAX_LEARNABLE) {
    if (f->softmax_offset == nullptr) return "softmax_offset: learnable softmax needs the [h] fp32 offsets";
    bad = cuda_family::device_pointer("softmax_offset", f->softmax_offset);
    if (!bad.empty()) return bad;
  }
  c->q = bhs(f->q, *c, c->sq), c->k = bhs(f->k, *c, c->skv), c->v = bhs(f->v, *c, c->skv), c->o = bhs(f->o, *c, c->sq);
  if (d->bias_type == TE_POST_SCALE_BIAS) {
    bad = biasOf(d, f, c);
    if (!bad.empty()) return bad;
  }
  if (d->bias_type == TE_ALIBI) {
    if (f->alibi_slopes == nullptr) return "alibi_slopes: cuda.cudnn needs the slopes (fp32 device array)";
    bad = cuda_family::device_pointer("alibi_slopes", f->alibi_slopes);
    if (!bad.empty()) return bad;
    // Measured on cuDNN 9.19 (native/cudnn/tests): with per-entry lengths the softmax statistics miss the
    // ALiBi term (TE's table refuses it too), and [b, h] slopes do not broadcast per entry: those become
    // an fp32 bias, as TE's get_alibi makes one.
    if (c->padded) return "cuda.cudnn: ALiBi with per-entry lengths (cu_seqlens) is not supported";
    if (d->alibi_per_batch) {
      c->alibi_as_bias = c->bias = true, c->bias_type = abi::CUDNN_DATA_FLOAT, c->bias_b = d->b, c->bias_h = d->h;
      c->bias_strides = {int64_t(d->h) * d->sq * d->skv, int64_t(d->sq) * d->skv, d->skv};
    } else {
      c->alibi = true;
    }
  }
  if (cudaGetDevice(&c->device) != cudaSuccess) return "cuda.cudnn: no current CUDA device";
  return "";
}

// One device allocation (the stream's cached workspace) carved into aligned pieces: the plan's
// workspace and the graphs' scratch.
class Scratch {
 public:
  Scratch(WorkspaceCache& cache, cudaStream_t stream, const std::vector<int64_t>& sizes) {
    int64_t total = 0;
    for (int64_t s : sizes) offsets_.push_back(total), total += (s + 255) / 256 * 256;
    base_ = cache.get(stream, total > 0 ? total : 256);
  }
  void* at(size_t i) const { return static_cast<char*>(base_) + offsets_[i]; }

 private:
  void* base_ = nullptr;
  std::vector<int64_t> offsets_;
};

void cudaCheck(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw Error(std::string("cuda.cudnn ") + what + ": " + cudaGetErrorString(err));
}

// The tensors of one execute: device pointers, and host scalars (4-byte values, read by cuDNN at the
// address given) whose values are kept as well, so an equal pack is known to mean the same call.
struct VariantPack {
  std::vector<int64_t> uids;
  std::vector<void*> pointers;
  std::vector<uint32_t> host_values;
  void add(int64_t uid, const void* p) { uids.push_back(uid), pointers.push_back(const_cast<void*>(p)); }
  template <typename T>
  void addHost(int64_t uid, const T* value) {
    static_assert(sizeof(T) == 4, "host scalars of the graphs are 4 bytes");
    uint32_t bits;
    std::memcpy(&bits, value, 4);
    add(uid, value), host_values.push_back(bits);
  }
};

void execute(const Library& lib, FamilyState& state, const ExecutionPlan& plan, const VariantPack& pack,
             void* workspace) {
  LastPack& last = state.extra.packs[&plan];
  if (!last.descriptor || last.workspace != workspace || last.uids != pack.uids || last.pointers != pack.pointers ||
      last.host_values != pack.host_values) {
    last.descriptor.reset();
    auto vp = std::make_unique<Descriptor>(lib, abi::CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    vp->setInt64s(abi::CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, pack.uids)
        .set(abi::CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, abi::CUDNN_TYPE_VOID_PTR, int64_t(pack.pointers.size()),
             pack.pointers.data())
        .set(abi::CUDNN_ATTR_VARIANT_PACK_WORKSPACE, abi::CUDNN_TYPE_VOID_PTR, 1, &workspace)
        .finalize("variant pack");
    last.uids = pack.uids, last.pointers = pack.pointers, last.host_values = pack.host_values;
    last.workspace = workspace;
    last.descriptor = std::move(vp);
  }
  check(lib, lib.execute(state.handle, plan.plan->raw(), last.descriptor->raw()), "execute");
}

// The host scalars and sequence lengths both directions pass. Host values must outlive execute().
struct CommonArgs {
  float scale, neg_inf = -INFINITY;
  float keep_rate = 1.0f, dropout_scale = 1.0f;  // 1 - p and 1 / (1 - p)
  int32_t diag_shift;
  float left_bound;          // window_left + 1 (- lk + lq for a bottom-right diagonal of full lengths)
  int32_t left_bound_i32;    // window_left + 1, with per-entry lengths
  int32_t right_bound;       // window_right (> 0)
  struct {
    uint64_t seed;
    uint32_t offset;
    void* device;  // 16 bytes of scratch for the int64 seed and offset
  } dropout;
  void* zero_sink;   // h floats of scratch: off_by_one's sink logits
  void* alibi_bias;  // fp32 [b, h, sq, skv] of scratch for per-entry ALiBi slopes
};

void addCommon(VariantPack& pack, const te_attn_fwd_args* f, const SdpaConfig& c, CommonArgs& host,
               const Scratch& scratch, cudaStream_t stream) {
  pack.add(kUidQ, f->q.data), pack.add(kUidK, f->k.data), pack.add(kUidV, f->v.data);
  pack.addHost(kUidScale, &host.scale);
  // A variant pack must name exactly the graph's tensors: -inf exists only where a mask does.
  if (c.masked()) pack.addHost(kUidNegInf, &host.neg_inf);
  if (c.padded) {
    auto* seq_q = static_cast<int32_t*>(scratch.at(1));
    auto* seq_kv = static_cast<int32_t*>(scratch.at(2));
    // A side without cu_seqlens has full lengths.
    cudaCheck(seqLengths(f->cu_seqlens_q, int(c.b), seq_q, stream, int32_t(c.sq)), "lengths");
    cudaCheck(seqLengths(f->cu_seqlens_kv, int(c.b), seq_kv, stream, int32_t(c.skv)), "lengths");
    pack.add(kUidSeqLenQ, seq_q), pack.add(kUidSeqLenKv, seq_kv);
  } else if (c.needsDiagShift()) {
    pack.addHost(kUidDiagShift, &host.diag_shift);
  }
  if (c.dropout > 0) {
    // cuDNN's generator reads int64 seed and offset from device memory (a pageable copy: host may go).
    const int64_t seed_offset[2] = {int64_t(host.dropout.seed), int64_t(host.dropout.offset)};
    auto* device = static_cast<int64_t*>(host.dropout.device);
    cudaCheck(cudaMemcpyAsync(device, seed_offset, sizeof seed_offset, cudaMemcpyHostToDevice, stream), "dropout seed");
    host.keep_rate = float(1.0 - c.dropout), host.dropout_scale = float(1.0 / (1.0 - c.dropout));
    pack.add(kUidDropoutSeed, device), pack.add(kUidDropoutOffset, device + 1);
    pack.addHost(kUidDropoutScale, &host.dropout_scale);
  }
  if (c.alibi_as_bias) {
    auto* bias = static_cast<float*>(host.alibi_bias);
    const int offset = c.bottom_right ? int(c.skv - c.sq) : 0;
    cudaCheck(alibiBias(f->alibi_slopes, int(c.b), int(c.h), int(c.sq), int(c.skv), offset, bias, stream),
              "ALiBi bias");
    pack.add(kUidBias, bias);
  } else if (c.bias) {
    pack.add(kUidBias, f->bias);
  }
  if (c.sink && f->softmax_offset != nullptr) {
    pack.add(kUidSink, f->softmax_offset);
  } else if (c.sink) {
    cudaCheck(cudaMemsetAsync(host.zero_sink, 0, size_t(c.h) * 4, stream), "sink");
    pack.add(kUidSink, host.zero_sink);
  }
  if (c.alibi) pack.add(kUidAlibiSlopes, f->alibi_slopes);
  if (c.window_left >= 0) {
    host.left_bound_i32 = int32_t(c.window_left + 1);
    host.left_bound = float(c.window_left + 1 - (c.bottom_right ? c.skv - c.sq : 0));
    if (c.padded) pack.addHost(kUidLeftBound, &host.left_bound_i32);
    else pack.addHost(kUidLeftBound, &host.left_bound);
  }
  if (c.window_right > 0) {
    host.right_bound = int32_t(c.window_right);
    pack.addHost(kUidRightBound, &host.right_bound);
  }
}

// dBias: contiguous [bias_b, bias_h, sq, skv] of the bias dtype.
std::string dbiasOf(const te_attn_desc* d, const te_attn_bwd_args* g, SdpaConfig* c) {
  if (!c->bias || c->alibi_as_bias) return "dbias: a bias gradient needs a post_scale_bias";
  std::string bad = cuda_family::device_pointer("dbias", g->dbias);
  if (!bad.empty()) return bad;
  if (g->dbias_numel < c->bias_b * c->bias_h * d->sq * d->skv) return "dbias: [bias_b, bias_h, sq, skv] expected";
  if (reinterpret_cast<uintptr_t>(g->dbias) % 16 != 0 || d->skv % 8 != 0)
    return "dbias: cuda.cudnn needs 16-byte aligned data and skv a multiple of 8";
  c->dbias = true;
  return "";
}

// thd: the ragged offsets of every packed tensor of the graph (forward: q, k, v, o; backward also dO, dq,
// dk, dv), computed on the stream into `offsets` (8 arrays of b + 1 int64).
void addRaggedOffsets(VariantPack& pack, const te_attn_fwd_args* f, const te_attn_bwd_args* g, const SdpaConfig& c,
                      void* offsets, cudaStream_t stream) {
  const int32_t* tokens_q = f->cu_seqlens_q_padded ? f->cu_seqlens_q_padded : f->cu_seqlens_q;
  const int32_t* tokens_kv = f->cu_seqlens_kv_padded ? f->cu_seqlens_kv_padded : f->cu_seqlens_kv;
  RaggedOffsets jobs;
  auto add = [&](int64_t uid, const int32_t* tokens, int64_t token_stride) {
    int64_t* out = static_cast<int64_t*>(offsets) + jobs.count * (c.b + 1);
    jobs.add(tokens, token_stride, out);
    pack.add(uid, out);
  };
  add(kUidRaggedQ, tokens_q, f->q.s), add(kUidRaggedK, tokens_kv, f->k.s), add(kUidRaggedV, tokens_kv, f->v.s);
  add(kUidRaggedO, tokens_q, f->o.s);
  if (g != nullptr) {
    add(kUidRaggedDO, tokens_q, g->d_o.s), add(kUidRaggedDQ, tokens_q, g->dq.s);
    add(kUidRaggedDK, tokens_kv, g->dk.s), add(kUidRaggedDV, tokens_kv, g->dv.s);
  }
  cudaCheck(raggedOffsets(jobs, int(c.b), stream), "ragged offsets");
}

int64_t alibiBiasBytes(const SdpaConfig& c) { return c.alibi_as_bias ? c.b * c.h * c.sq * c.skv * 4 : 0; }

int64_t raggedOffsetBytes(const SdpaConfig& c) { return c.ragged ? RaggedOffsets::kMax * (c.b + 1) * 8 : 0; }

EmptyRows queryRows(const te_attn_fwd_args* f, const SdpaConfig& c) {
  EmptyRows r;
  r.cu_self = f->cu_seqlens_q, r.s = int(c.sq), r.cu_other = f->cu_seqlens_kv, r.other_max = int(c.skv);
  r.bottom_right = c.bottom_right, r.left = int(c.window_left), r.right = int(c.window_right);
  return r;
}

// Whether some query row may have no allowed key: always with per-entry lengths; with full lengths when
// the first row's right bound ends before key 0 or the last row's left bound starts past the last key.
bool hasEmptyQueryRows(const SdpaConfig& c) {
  const int64_t offset = c.bottom_right ? c.skv - c.sq : 0;
  return c.padded || (c.window_right >= 0 && offset + c.window_right < 0) ||
         (c.window_left >= 0 && c.sq - 1 + offset - c.window_left >= c.skv);
}

te_status forward(const te_attn_desc* d, const te_attn_fwd_args* f) {
  return guarded([&] {
    SdpaConfig c;
    const std::string bad = configOf(d, f, &c);
    if (!bad.empty()) return fail(TE_ERR_UNSUPPORTED, bad);
    try {
      const Library& lib = *loadLibrary(nullptr);
      cudaStream_t stream = static_cast<cudaStream_t>(f->stream);
      FamilyState& state = stateFor<FamilyExtra>(lib, c.device);
      const ExecutionPlan& plan = planFor(lib, state, c, false);
      check(lib, lib.setStream(state.handle, stream), "cudnnSetStream");
      Scratch scratch(state.extra.workspace, stream,
                      {plan.workspace_bytes, c.b * 4, c.b * 4, raggedOffsetBytes(c), 16, c.h * 4, alibiBiasBytes(c)});
      CommonArgs host{d->scale};
      host.dropout = {d->dropout_seed, d->dropout_offset, scratch.at(4)}, host.zero_sink = scratch.at(5);
      host.alibi_bias = scratch.at(6);
      host.diag_shift = int32_t(c.skv - c.sq);
      VariantPack pack;
      addCommon(pack, f, c, host, scratch, stream);
      pack.add(kUidO, f->o.data), pack.add(kUidStats, f->lse);
      if (c.ragged) addRaggedOffsets(pack, f, nullptr, c, scratch.at(3), stream);
      execute(lib, state, plan, pack, scratch.at(0));
      // thd rows past a length belong to the next entry (or to padding the caller zeroed): lse only.
      if (hasEmptyQueryRows(c))
        cudaCheck(clearEmptyRows(c.ragged ? nullptr : f->o.data, f->o.b, f->o.s, f->o.h, d->b, d->h, d->dv,
                                 queryRows(f, c), f->lse, stream),
                  "row fix-up");
      return TE_OK;
    } catch (const Error& e) {
      return fail(TE_ERR_CUDA, e.what());
    }
  });
}

te_status backward(const te_attn_desc* d, const te_attn_bwd_args* g) {
  return guarded([&] {
    const te_attn_fwd_args* f = &g->fwd;
    SdpaConfig c;
    std::string bad = configOf(d, f, &c);
    if (bad.empty() && g->dbias != nullptr) bad = dbiasOf(d, g, &c);
    const std::pair<const char*, const te_view*> grads_in[] = {{"dO", &g->d_o}};
    for (auto [name, v] : grads_in)
      if (bad.empty()) bad = checkView(name, v->data, v->b, v->s, v->h, v->c);
    const std::pair<const char*, const te_out_view*> grads[] = {{"dq", &g->dq}, {"dk", &g->dk}, {"dv", &g->dv}};
    for (auto [name, v] : grads)
      if (bad.empty()) bad = checkView(name, v->data, v->b, v->s, v->h, v->c);
    if (bad.empty() && g->d_softmax_offset != nullptr)
      bad = cuda_family::device_pointer("d_softmax_offset", g->d_softmax_offset);
    // cuDNN's backward with a sink computes its gradient too (the variant pack is refused without it);
    // off_by_one's goes to scratch.
    c.dsink = c.sink;
    if (!bad.empty()) return fail(TE_ERR_UNSUPPORTED, bad);
    c.d_o = bhs(g->d_o, c, c.sq), c.dq = bhs(g->dq, c, c.sq);
    c.dk = bhs(g->dk, c, c.skv), c.dv_out = bhs(g->dv, c, c.skv);
    try {
      const Library& lib = *loadLibrary(nullptr);
      cudaStream_t stream = static_cast<cudaStream_t>(f->stream);
      FamilyState& state = stateFor<FamilyExtra>(lib, c.device);
      const ExecutionPlan& plan = planFor(lib, state, c, true);
      check(lib, lib.setStream(state.handle, stream), "cudnnSetStream");
      Scratch scratch(state.extra.workspace, stream,
                      {plan.workspace_bytes, c.b * 4, c.b * 4, c.softmaxSumBytes(), c.dqAccumBytes(),
                       raggedOffsetBytes(c), 16, c.h * 4, c.h * 4, alibiBiasBytes(c)});
      CommonArgs host{d->scale};
      host.dropout = {d->dropout_seed, d->dropout_offset, scratch.at(6)}, host.zero_sink = scratch.at(7);
      host.alibi_bias = scratch.at(9);
      host.diag_shift = int32_t(c.skv - c.sq);
      VariantPack pack;
      addCommon(pack, f, c, host, scratch, stream);
      pack.add(kUidO, f->o.data), pack.add(kUidStats, f->lse), pack.add(kUidDO, g->d_o.data);
      pack.add(kUidDQ, g->dq.data), pack.add(kUidDK, g->dk.data), pack.add(kUidDV, g->dv.data);
      pack.addHost(kUidKeepRate, &host.keep_rate), pack.add(kUidSoftmaxSum, scratch.at(3));
      if (!c.dqDirect()) {
        // cuDNN zeroes its dQ accumulator itself from 9.6.0 on; before, the caller does.
        if (loadedVersion() < 90600)
          cudaCheck(cudaMemsetAsync(scratch.at(4), 0, size_t(c.dqAccumBytes()), stream), "dQ accumulator");
        pack.add(kUidDQAccum, scratch.at(4));
      }
      const bool learnable_grad = d->softmax_type == TE_SOFTMAX_LEARNABLE && g->d_softmax_offset != nullptr;
      if (c.dsink) pack.add(kUidDSink, learnable_grad ? g->d_softmax_offset : scratch.at(8));
      if (c.dbias) {
        pack.add(kUidDBias, g->dbias);
        // Rows past an entry's length are outside cuDNN's matmul overrides: their dBias (zero, as P is) is
        // written here rather than trusted to the engine.
        if (c.padded)
          cudaCheck(cudaMemsetAsync(g->dbias, 0, size_t(c.bias_b * c.bias_h * c.sq * c.skv) * 2, stream), "dbias");
      }
      if (c.ragged) addRaggedOffsets(pack, f, g, c, scratch.at(5), stream);
      execute(lib, state, plan, pack, scratch.at(0));
      if (hasEmptyQueryRows(c) && !c.ragged) {
        cudaCheck(clearEmptyRows(g->dq.data, g->dq.b, g->dq.s, g->dq.h, d->b, d->h, d->d, queryRows(f, c), nullptr,
                                 stream),
                  "row fix-up");
        EmptyRows keys;
        keys.cu_self = f->cu_seqlens_kv, keys.s = int(c.skv);
        cudaCheck(clearEmptyRows(g->dk.data, g->dk.b, g->dk.s, g->dk.h, d->b, d->hg, d->d, keys, nullptr, stream),
                  "row fix-up");
        cudaCheck(clearEmptyRows(g->dv.data, g->dv.b, g->dv.s, g->dv.h, d->b, d->hg, d->dv, keys, nullptr, stream),
                  "row fix-up");
      }
      return TE_OK;
    } catch (const Error& e) {
      return fail(TE_ERR_CUDA, e.what());
    }
  });
}

struct Registrar {
  Registrar() {
    static const te_attn_family family{"cuda.cudnn", explain, forward, backward};
    te_attn_register(&family);
  }
};
const Registrar registrar;

}  // namespace
}  // namespace te::cudnn

// Referenced by the link options of sources.cmake so that static linking keeps the registrar.
extern "C" {
int te_cuda_cudnn_family_linked = 1;
int te_cudnn_version(void) { return te::cudnn::loadedVersion(); }
}

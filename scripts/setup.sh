#!/usr/bin/env bash
# Sets up a fresh machine for @te: pnpm, the system packages the WebGPU tests use (Debian's chromium ships
# SwiftShader's Vulkan driver, which Dawn accepts), the workspace dependencies, and a build of every package.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# onnxruntime-node's install script downloads CUDA binaries, which cannot work offline; its CPU build is bundled.
export ONNXRUNTIME_NODE_INSTALL=skip

if ! command -v pnpm >/dev/null 2>&1 || [[ "$(pnpm --version)" != 10.* ]]; then
  npm install -g pnpm@10.34.8
fi

# chromium: SwiftShader's Vulkan driver and the browser test's browser; libvulkan1: the system Vulkan loader,
# so Dawn finds the driver from any process (te conformance --backend webgpu.flash) without LD_LIBRARY_PATH.
apt_install() {  # apt-get install "$@" as root; otherwise say what is missing
  if ! command -v apt-get >/dev/null 2>&1; then return; fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: not root, skipping 'apt-get install $*' (WebGPU on SwiftShader and the browser test need it)" >&2
    return
  fi
  [[ -n ${apt_updated:-} ]] || { apt-get update -qq || true; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || echo "setup: could not install $*; WebGPU tests will report that no adapter is available" >&2
}
[[ -f /usr/lib/chromium/vk_swiftshader_icd.json ]] || apt_install chromium
# Without recommends: Mesa's Vulkan drivers (lavapipe, which Dawn refuses) are not wanted.
ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || apt_install --no-install-recommends libvulkan1

pnpm install --frozen-lockfile
pnpm build

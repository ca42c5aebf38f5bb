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

if [[ ! -f /usr/lib/chromium/vk_swiftshader_icd.json ]] && command -v apt-get >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || echo "setup: could not install chromium; WebGPU tests will report that no adapter is available" >&2
  else
    echo "setup: not root, skipping 'apt-get install chromium' (WebGPU on SwiftShader and the browser test need it)" >&2
  fi
fi

pnpm install --frozen-lockfile
pnpm build

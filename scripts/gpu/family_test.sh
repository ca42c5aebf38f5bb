#!/usr/bin/env bash
# On the GPU machine, from the repo root: builds te_native_core with CUDA (native/CMakeLists.txt, which
# includes native/cuda/sources.cmake) and checks the cuda.flash family against the cpu family.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
cmake -S native -B /tmp/te-native -DTE_NATIVE_CUDA=ON -DCMAKE_BUILD_TYPE=Release > "$out/family_cmake.log" 2>&1 &&
  cmake --build /tmp/te-native -j"$(nproc)" >> "$out/family_cmake.log" 2>&1 || { tail -40 "$out/family_cmake.log"; exit 1; }
nvcc -std=c++17 -O2 -arch=sm_90a -Inative/include native/cuda/tests/family_test.cu /tmp/te-native/libte_native_core.a \
  -Xlinker --undefined=te_cuda_flash_family_linked -Xlinker --undefined=te_cuda_unfused_family_linked \
  -o /tmp/family_test || exit 1
/tmp/family_test | tee "$out/family_test.txt"

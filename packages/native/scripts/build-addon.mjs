// Builds build/Release/te_native.node with CMake, offline: Node's headers come from NODE_INCLUDE,
// npm's `nodedir` (env or ~/.npmrc) or the headers installed beside this node binary; nothing is
// downloaded. CUDA kernels are compiled with TE_NATIVE_CUDA=1 (nvcc required); the default is a CPU-only
// build, because compiling every cuda.flash variant for sm_80 and sm_90a took 11.5 minutes (wall; 2.6 min
// of CPU) on the loaded 2-core CI machine. TE_NATIVE_CUDA=auto compiles CUDA when nvcc is found.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism, homedir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);

function npmrcNodedir() {
  const rc = path.join(homedir(), ".npmrc");
  if (!existsSync(rc)) return undefined;
  const line = readFileSync(rc, "utf8")
    .split("\n")
    .find((l) => /^\s*nodedir\s*=/.test(l));
  return line?.split("=")[1].trim();
}

function nodeIncludeDir() {
  const candidates = [
    process.env.NODE_INCLUDE,
    process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, "include/node"),
    npmrcNodedir() && path.join(npmrcNodedir(), "include/node"),
    path.resolve(path.dirname(process.execPath), "../include/node"),
    "/usr/include/node",
    "/usr/local/include/node",
  ].filter(Boolean);
  const found = candidates.find((dir) => existsSync(path.join(dir, "node_api.h")));
  if (!found) {
    throw new Error(
      `@te/native: Node's headers (node_api.h) not found; tried ${candidates.join(", ")}. Set NODE_INCLUDE.`,
    );
  }
  return found;
}

function hasNvcc() {
  if (process.env.CUDACXX && existsSync(process.env.CUDACXX)) return true;
  return spawnSync("nvcc", ["--version"], { stdio: "ignore" }).status === 0;
}

const addonApi = String(require("node-addon-api").include_dir).replace(/"/g, "");
const cudaMode = process.env.TE_NATIVE_CUDA ?? "0";
const cuda = cudaMode === "1" || (cudaMode === "auto" && hasNvcc());
if (cudaMode === "1" && !hasNvcc())
  throw new Error("@te/native: TE_NATIVE_CUDA=1 but nvcc was not found (set CUDACXX or PATH)");
const buildDir = path.join(pkgDir, "build", "cmake");
const outDir = path.join(pkgDir, "build", "Release");
const jobs = String(Math.max(1, Number(process.env.TE_NATIVE_JOBS) || availableParallelism()));

const run = (args) => execFileSync("cmake", args, { stdio: "inherit", cwd: pkgDir });
const started = Date.now();
run([
  "-S",
  pkgDir,
  "-B",
  buildDir,
  "-DCMAKE_BUILD_TYPE=Release",
  `-DNODE_INCLUDE_DIR=${nodeIncludeDir()}`,
  `-DNODE_ADDON_API_DIR=${path.resolve(pkgDir, addonApi)}`,
  `-DTE_ADDON_OUTPUT_DIR=${outDir}`,
  `-DTE_NATIVE_CUDA=${cuda ? "ON" : "OFF"}`,
  "-Wno-dev",
]);
run(["--build", buildDir, "--parallel", jobs]);
console.log(
  `@te/native: built ${path.join(outDir, "te_native.node")} (cuda: ${cuda ? "on" : "off"}) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
);

#!/usr/bin/env node
// Runs every package's test suite through turbo (one package at a time: the machine has 2 cores and
// several suites are multi-threaded), then prints one closing line over all of them:
// "Tests: N passed, M failed, K skipped". Exits non-zero when any suite failed.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const RESULT_FILE = "test-results.json";
const workspaceDirs = ["packages", "examples", "benchmarks"]
  .flatMap((top) => (existsSync(join(root, top)) ? readdirSync(join(root, top)).map((d) => join(root, top, d)) : []))
  .concat([join(root, "benchmarks")]);

for (const dir of workspaceDirs) rmSync(join(dir, RESULT_FILE), { force: true });

const run = (args) => spawnSync("pnpm", ["exec", "turbo", ...args], { cwd: root, stdio: "inherit" }).status ?? 1;
let status = run(["run", "build"]);
if (status === 0) {
  status = run(["run", "test", "--concurrency=1", "--continue", "--", "--reporter=default", "--reporter=json", `--outputFile.json=${RESULT_FILE}`]);
}

let passed = 0;
let failed = 0;
let skipped = 0;
for (const dir of workspaceDirs) {
  const file = join(dir, RESULT_FILE);
  if (!existsSync(file)) continue;
  const r = JSON.parse(readFileSync(file, "utf8"));
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
}
if (status !== 0 && failed === 0) failed = 1; // a build or a suite failed before reporting its tests
console.log(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status === 0 && failed === 0 ? 0 : 1);

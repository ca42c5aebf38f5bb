import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { formatCaseResult, runConformance } from "../src/conformance/index.js";
import { referenceBackend } from "../src/reference/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const casesDir = process.env.TE_CONFORMANCE_DIR ?? path.resolve(here, "../../../../shared/conformance/cases");

describe("conformance of the reference backend", () => {
  it("passes every case in fp32 with gradients", async () => {
    const summary = await runConformance({ dir: casesDir, backend: referenceBackend, dtype: "fp32" });
    const failures = summary.results.filter((r) => r.status !== "pass").map(formatCaseResult);
    expect(failures).toEqual([]);
    expect(summary.passed).toBe(50);
  }, 180_000);
});

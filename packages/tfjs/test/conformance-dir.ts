import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

/** The conformance cases kept in the repository (conformance/cases), or TE_CONFORMANCE_DIR. */
export const CONFORMANCE_DIR =
  process.env.TE_CONFORMANCE_DIR ?? path.resolve(here, "../../../conformance/cases");

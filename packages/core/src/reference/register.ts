import { registerBackend } from "../registry.js";
import { referenceBackend } from "./backend.js";

// Importing @te/core registers the reference, so every process has a backend for host tensors.
registerBackend(referenceBackend);

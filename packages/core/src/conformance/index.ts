export * from "./case.js";
export * from "./compare.js";
export * from "./feed.js";
export * from "./files.js";
export * from "./inputs.js";
export * from "./npy.js";
export * from "./packed-views.js";
export * from "./run.js";

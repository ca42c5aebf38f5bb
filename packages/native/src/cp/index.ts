export { type LaunchOptions, launchRanks, type RankExit } from "./launcher.js";
export { CP_ENV, type CpMessage, UNIQUE_ID_BYTES } from "./protocol.js";
export { type CpRank, cpRankFromEnv, type LauncherChannel, shareUniqueId } from "./rank.js";

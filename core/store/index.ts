// Public face of core/store.
export type * from "./types.js";
export { LevelStore, type LevelStoreOptions } from "./level-store.js";

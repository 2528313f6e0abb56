import type { IdentityRecord } from "../identity/types.js";

/** Paths on every gateway's HTTPS front (one port between layers). */
export const SCOPE_PATH = "/$strata/scope";
export const IDENTITIES_PATH = "/$strata/identities";
export const CHILDREN_PATH = "/$strata/children";
/** This gateway's dead letters (`?limit=`, newest last), for its own identity (the CLI) or the owner on the root. */
export const DEADLETTERS_PATH = "/$strata/deadletters";

/** `GET /$strata/deadletters`: the counter and the newest dead letters with their reasons (bodies left out). */
export interface DeadLettersAnswer {
  /** Dead letters written since this gateway started (the store's counter). */
  deadLettered: number;
  deadLetters: {
    id: string; source: string; origin: string; messageId: string | null; endpoint: string; reason: string;
    /** When it was dead-lettered (ms since the epoch). */
    at: number; bytes: number;
  }[];
}

/**
 * The answer to `GET /$strata/scope?since=<cursor>&epoch=<epoch>&wait=<s>`: the records of the asking child's
 * subtree changed after `since`, and the ids that left it. `full` means "this is everything: drop what is
 * absent" (first sync, the parent restarted, or `since` is older than the parent's removal log).
 */
export interface ScopeAnswer {
  /** Names the parent's change log; a different epoch than the child's cursor means a full resync. */
  epoch: string;
  /** What to send as `since` next time. */
  cursor: number;
  full: boolean;
  records: IdentityRecord[];
  removed: string[];
}

/** One child as `GET /$strata/children` answers it (what `strata child list` prints). */
export interface ChildState {
  id: string;
  status: IdentityRecord["status"];
  /** The child's own identity has a live link on this gateway's hub (its upstream connection). */
  connected: boolean;
  /** A scope-sync long poll from the child is open right now. */
  syncing: boolean;
  /** When the child last asked for its scope (ms since the epoch), or null: not since this gateway started. */
  lastSeen: number | null;
  /** Identities in the child's subtree, the child included. */
  subtree: number;
}

// Public face of core/identity: filled in by its implementation.
export {};

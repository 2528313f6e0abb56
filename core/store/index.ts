// Public face of core/store: filled in by its implementation.
export {};

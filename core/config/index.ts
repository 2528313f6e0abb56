// Public face of core/config: filled in by its implementation.
export {};

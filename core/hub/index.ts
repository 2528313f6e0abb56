// Public face of core/hub: filled in by its implementation.
export {};

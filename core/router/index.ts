// Public face of core/router: filled in by its implementation.
export {};

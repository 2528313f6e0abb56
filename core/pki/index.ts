// Public face of core/pki: filled in by its implementation.
export {};

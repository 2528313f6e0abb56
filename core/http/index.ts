// Public face of core/http: filled in by its implementation.
export {};

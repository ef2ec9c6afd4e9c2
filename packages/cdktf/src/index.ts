/**
 * CDK for Terraform bindings of the sym provider: `SymProvider`, `Flow`, `Environment`, `DataSymIntegration`, …
 * (flat), and the same grouped by module as `cdktf get` lays them out (`flow.Flow`, `provider.SymProvider`).
 * The classes are generated from the provider schema (`npm run gen:cdktf`, see scripts/bindings.ts).
 */
export * from '../generated/index.js'

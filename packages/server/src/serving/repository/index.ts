// The model repository: manifests, versions, aliases, compatibility and reference resolution.
export {
  Repository,
  RepositoryError,
  loadModelEntry,
  checkCompatibility,
  MODEL_NAME,
  VERSION_NAME,
  type ModelEntry,
  type ModelVersion,
  type ConfigPolicies,
} from './repository.js';
export { readManifest, checkManifest, encoderResources, ManifestError } from './manifest.js';
export { modelBytes } from './model-bytes.js';

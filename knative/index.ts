export { type BotManifest, MAX_CONTAINER_CONCURRENCY, MAX_REVISION_TIMEOUT_SECONDS, type ManifestProblem, ManifestValidationError, parseManifest, type SecretSource } from './manifest.ts';
export { CONTAINER_PORT, type Container, type KnativeService, RenderError, type RenderOptions, botImage, placeholderImage, renderService } from './render/service.ts';
export { MANAGED_BY, type RenderedTriggers, type TriggerRenderOptions, botTriggerSelector, renderTriggers } from './render/triggers.ts';
export { type ServiceProblem, validateService } from './validate.ts';
export { parseGoDuration } from './go-duration.ts';
export { FIELD_MANAGER, type ListedTrigger, type ServiceClient, TRAFFIC_MANAGER, serviceClient } from './kube.ts';
export { type ServiceState, type TrafficTarget, serviceState, splitTraffic } from './status.ts';

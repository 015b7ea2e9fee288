import { propagation, trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { useTracer } from './spans.ts';

/**
 * Whether the standard OTEL_* variables ask for traces: OTEL_TRACES_EXPORTER lists otlp, or is
 * unset while an OTLP endpoint is named; and the SDK is not disabled. The runner applies the same
 * rule (runner/tracing.py), and inherits the gateway's environment.
 */
export function tracesRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((e) => e.trim().toLowerCase()).filter(Boolean);
  if (exporters.length > 0) return exporters.includes('otlp') && !exporters.includes('none');
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** The service name the gateway's spans carry; runners add `-runner` to it. */
export function serviceName(env: NodeJS.ProcessEnv): string {
  return env.OTEL_SERVICE_NAME?.trim() || 'edge-embed';
}

/**
 * Starts the OpenTelemetry SDK when tracesRequested, and returns what flushes and stops it
 * (undefined when tracing stays off). The SDK is imported only then, so a server without OTEL_*
 * settings never loads it.
 */
export async function startTracing(env: NodeJS.ProcessEnv, logger: Logger): Promise<(() => Promise<void>) | undefined> {
  if (!tracesRequested(env)) return undefined;
  const [sdk, { OTLPTraceExporter }, resources, { W3CTraceContextPropagator }] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-proto'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
  ]);
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (protocol && protocol !== 'http/protobuf') {
    logger.warn({ protocol }, 'otel_protocol_unsupported: traces are sent as http/protobuf');
  }
  const detected = resources.detectResources({ detectors: [resources.resourceAttributesEnvDetector] });
  const resource = resources.resourceFromAttributes({ 'service.name': serviceName(env) }).merge(detected);
  const provider = new sdk.TracerProvider({
    resource,
    sampler: samplerFrom(env, sdk, logger),
    spanProcessors: [new sdk.BatchSpanProcessor({
      exporter: new OTLPTraceExporter(),
      scheduledDelayMillis: positive(env.OTEL_BSP_SCHEDULE_DELAY) ?? 5_000,
    })],
  });
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  useTracer(provider.getTracer('edge-embed-gateway'));
  logger.info({ service: serviceName(env), sampler: env.OTEL_TRACES_SAMPLER || 'parentbased_always_on' }, 'tracing_started');
  // At most 3 s: a slow collector must not hold the shutdown past SHUTDOWN_TIMEOUT_S.
  return async () => {
    useTracer(undefined);
    const flushed = provider.shutdown().catch((err: Error) => logger.warn({ err: err.message }, 'tracing_flush_failed'));
    await Promise.race([flushed, new Promise((resolve) => setTimeout(resolve, 3_000).unref())]);
  };
}

function positive(raw: string | undefined): number | undefined {
  const n = Number(raw);
  return raw && Number.isFinite(n) && n > 0 ? n : undefined;
}

/**
 * OTEL_TRACES_SAMPLER and its argument, as the specification names them; parent-based by default.
 * An empty or invalid ratio is 1, as Python's SDK reads it, so that both processes agree.
 */
function samplerFrom(env: NodeJS.ProcessEnv, sdk: typeof import('@opentelemetry/sdk-trace'), logger: Logger) {
  const raw = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  const ratio = raw ? Number(raw) : Number.NaN;
  const byRatio = () => new sdk.TraceIdRatioBasedSampler(Number.isFinite(ratio) ? Math.min(Math.max(ratio, 0), 1) : 1);
  const name = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase();
  switch (name) {
    case 'always_on': return new sdk.AlwaysOnSampler();
    case 'always_off': return new sdk.AlwaysOffSampler();
    case 'traceidratio': return byRatio();
    case 'parentbased_always_off': return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() });
    case 'parentbased_traceidratio': return new sdk.ParentBasedSampler({ root: byRatio() });
    default:
      if (name && name !== 'parentbased_always_on') logger.warn({ sampler: name }, 'otel_sampler_unknown: using parentbased_always_on');
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() });
  }
}
